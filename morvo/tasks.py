from __future__ import annotations

import socket
from typing import Any

from celery import shared_task

from morvo import realtime, services
from morvo.celery import tenant_task
from morvo.models import Tenant


@shared_task(ignore_result=True)
def heartbeat_task() -> None:
    """Scheduled by beat, run by a worker: its row's age proves both are alive."""
    services.heartbeat_record("beat", worker=socket.gethostname())


@shared_task(ignore_result=True)
def throttle_windows_prune_task() -> int:
    return services.throttle_windows_prune()


@shared_task(ignore_result=True)
def broker_messages_prune_task() -> int:
    return services.broker_messages_prune()


@shared_task
def echo_task(value: Any) -> Any:
    """Round-trip probe (benchmarks, readiness of a worker)."""
    return value


@tenant_task
def tenant_broadcast_task(tenant: Tenant, payload: dict[str, Any]) -> None:
    realtime.tenant_broadcast(tenant.pk, payload)
