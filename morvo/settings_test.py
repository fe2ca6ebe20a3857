"""Settings for the test suite: the same PostgreSQL profile (a throwaway database on the
embedded server, or the server in TEST_DATABASE_URL), faster hashing, quiet logs.

Subprocesses the tests start (a real Celery worker and beat, a real daphne) set
``MORVO_USE_TEST_DATABASE=1`` so they work in the test database too.
"""

import os
import tempfile

# Metrics of the test run (and of the processes it starts) stay out of var/prometheus.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="morvo-test-metrics-"))

if os.environ.get("TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]

from morvo.settings import *  # noqa: F403
from morvo.settings import DATABASES, REST_FRAMEWORK, database_sqlalchemy_url, env

TEST_DATABASE_NAME = DATABASES["default"]["TEST"]["NAME"]  # type: ignore[index]
if os.environ.get("MORVO_USE_TEST_DATABASE") == "1":
    DATABASES["default"]["NAME"] = TEST_DATABASE_NAME

# The broker lives in the test database, so a worker started by a test shares it.
_test_db = {**DATABASES["default"], "NAME": TEST_DATABASE_NAME}
if not env.str("MORVO_REDIS_URL", default=""):
    CELERY_BROKER_URL = "morvosql+" + database_sqlalchemy_url(_test_db)
    CELERY_RESULT_BACKEND = "db+" + database_sqlalchemy_url(_test_db)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"token": "100000/min", "ip": "100000/min"},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
ACCOUNT_RATE_LIMITS = False  # type: ignore[assignment]
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
