from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db.models import Exists, OuterRef
from django.utils import timezone

from conversations import services
from conversations.models import Message
from morvo.celery import tenant_task
from morvo.models import Tenant


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def conversation_turn_task(tenant: Tenant, message_id: int) -> int | None:
    """Runs one turn. Idempotent: a second run finds the reply and does nothing."""
    reply = services.turn_run(tenant, message_id)
    return reply.pk if reply is not None else None


@tenant_task
def turns_recover_tenant_task(tenant: Tenant) -> dict[str, int]:
    return services.turns_recover(tenant)


@shared_task(ignore_result=True)
def turns_recover_task() -> int:
    """Beat: one recovery job per tenant that has a message waiting too long."""
    answered = Message.objects.all_tenants().filter(reply_to=OuterRef("pk"), role=Message.Role.ASSISTANT)
    since = timezone.now() - timedelta(days=1)
    late = timezone.now() - timedelta(seconds=60)
    tenant_ids = list(
        Message.objects.all_tenants()
        .filter(role=Message.Role.USER, conversation__handled_by="ai", created_at__range=(since, late))
        .filter(~Exists(answered))
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    for tenant_id in tenant_ids:
        turns_recover_tenant_task.apply_async((tenant_id,), expires=60)
    return len(tenant_ids)
