from __future__ import annotations

from conversations import services
from morvo.celery import tenant_task
from morvo.models import Tenant


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def conversation_turn_task(tenant: Tenant, message_id: int) -> int | None:
    """Runs one turn. Idempotent: a second run finds the reply and does nothing."""
    reply = services.turn_run(tenant, message_id)
    return reply.pk if reply is not None else None
