"""The Celery app. Tasks that work for a tenant take the tenant id first and use
:class:`TenantTask` (``@tenant_task``), which loads the tenant and makes it active."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_failure, task_retry, task_success, worker_init, worker_process_init

import morvo.broker  # noqa: F401  (registers the embedded broker transport)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morvo.settings")

app = Celery("morvo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@worker_init.connect
def _yield_the_cpu_to_the_web(**_: Any) -> None:
    """Background work gives way to requests: the worker (and the pool children it forks) runs
    at a lower CPU priority (``MORVO_WORKER_NICE``), so on a machine shared with the web server
    — the embedded profile — a burst of webhooks or turns queues in the worker instead of
    slowing every page, socket and acknowledgement."""
    from django.conf import settings

    increment = getattr(settings, "MORVO_WORKER_NICE", 0)
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:  # not permitted here: run at the normal priority
            logger.warning("could not lower the worker's CPU priority")


@worker_process_init.connect
def _warm_the_router(**_: Any) -> None:
    """Each worker child loads the sentence encoder and the intent examples in the background
    as it starts, so the first chat turn it takes does not pay for them (a second or two).
    (No crew runs here: crewai must not run before a fork, and this is after it.)"""
    import threading

    def warm() -> None:
        try:
            from agents_app.router import analyze

            # The intent examples, the encoder (its tokenizer alone takes a second or two to
            # load), the entity and sentiment patterns: everything a turn's analysis needs.
            for sample in ("مرحبا، كم سعر العطر؟ أبغى أحجز بكرة الساعة ٤ العصر", "Hi, is it in stock? 2 of size M"):
                analyze(sample)
        except Exception:  # a failed warm-up only means the first turn loads it
            logger.exception("warming the router failed")

    threading.Thread(target=warm, name="morvo-router-warm-up", daemon=True).start()


class TenantGone(Exception):
    """The task's tenant no longer exists or is inactive; the task is dropped, not retried."""


class TenantTask(Task):  # type: ignore[misc]
    """``run(tenant, *args)`` is called with the Tenant loaded from the first argument, and
    that tenant active for the whole run."""

    def __call__(self, tenant_id: int, *args: Any, **kwargs: Any) -> Any:
        from morvo import tenancy
        from morvo.models import Tenant

        if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
            raise TypeError(f"{self.name}: the first argument must be a tenant id, got {tenant_id!r}")
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            logger.warning("%s: tenant %s is gone; dropping the task", self.name, tenant_id)
            raise TenantGone(tenant_id)
        with tenancy.tenant_context(tenant):
            return self.run(tenant, *args, **kwargs)


def tenant_task(*args: Any, **options: Any) -> Any:
    """``@tenant_task`` / ``@tenant_task(name=…)``: a task whose first argument is a tenant id."""
    options.setdefault("base", TenantTask)
    options.setdefault("throws", (TenantGone,))
    if len(args) == 1 and callable(args[0]):
        return app.task(**options)(args[0])
    return app.task(*args, **options)


@task_success.connect
def _count_success(sender: Any = None, **kwargs: Any) -> None:
    from morvo import metrics

    metrics.CELERY_TASKS.labels(task=getattr(sender, "name", "?"), state="succeeded").inc()


@task_failure.connect
def _count_failure(sender: Any = None, **kwargs: Any) -> None:
    from morvo import metrics

    metrics.CELERY_TASKS.labels(task=getattr(sender, "name", "?"), state="failed").inc()


@task_retry.connect
def _count_retry(sender: Any = None, **kwargs: Any) -> None:
    from morvo import metrics

    metrics.CELERY_TASKS.labels(task=getattr(sender, "name", "?"), state="retried").inc()
