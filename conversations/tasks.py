from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations import realtime, services
from conversations.models import Message, OutboxMessage, WebhookEvent
from morvo.celery import tenant_task
from morvo.models import Tenant

logger = logging.getLogger(__name__)

# The longest a batch of webhook events holds its socket pushes back.
WEBHOOK_PUSH_SECONDS = 0.05


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5, ignore_result=True)
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
        .exclude(metadata__contains={"blocked": True})
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    for tenant_id in tenant_ids:
        turns_recover_tenant_task.apply_async((tenant_id,), expires=60)
    return len(tenant_ids)


@tenant_task(ignore_result=True)
def webhook_event_process_task(tenant: Tenant, event_id: int) -> str:
    """Turn one accepted webhook event into its effect. Idempotent: a done event is skipped."""
    return services.webhook_event_process(tenant, event_id)


@tenant_task(ignore_result=True)
def webhook_events_process_task(tenant: Tenant, event_ids: list[int]) -> dict[str, int]:
    """Process a batch of accepted webhook events, each on its own (one failing leaves the
    others done; it stays pending for the beat job to retry). Idempotent like the single task.
    The socket pushes of the batch go out together, at least every
    :data:`WEBHOOK_PUSH_SECONDS`."""
    outcomes: dict[str, int] = {}
    with realtime.gathered() as pushes:
        for event_id in event_ids:
            try:
                outcome = services.webhook_event_process(tenant, event_id)
            except Exception:
                logger.exception("webhook event %s of tenant %s failed; the beat job retries it", event_id, tenant.pk)
                outcome = "failed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if time.monotonic() - pushes.flushed_at >= WEBHOOK_PUSH_SECONDS:
                pushes.flush()
    return outcomes


@tenant_task(ignore_result=True)
def outbox_deliver_task(tenant: Tenant, outbox_id: int) -> str:
    """Deliver one outbox row when due. Idempotent: the row is claimed atomically, and a sent
    or dead row is skipped."""
    return services.outbox_deliver(tenant, outbox_id)


@tenant_task(ignore_result=True)
def outbox_pump_task(tenant: Tenant, inbox_id: int) -> dict[str, int]:
    """Deliver what is due in one inbox, within its rate (see ``services.outbox_pump``).
    Idempotent: rows are claimed atomically, and one pump per inbox runs at a time. Routed to
    the ``outbox`` queue, so deliveries start while other work is still queued."""
    return services.outbox_pump(tenant, inbox_id)


@tenant_task(ignore_result=True)
def channels_flush_tenant_task(tenant: Tenant) -> dict[str, int]:
    return {"outbox": services.outbox_flush(tenant), "webhook_events": services.webhook_events_retry(tenant)}


@shared_task(ignore_result=True)
def channels_flush_task() -> int:
    """Beat: one flush per tenant with outbox rows due (or stuck in a dead worker's hands)
    or webhook events still pending; each flush claims its rows, so running twice is safe."""
    now = timezone.now()
    stale = now - timedelta(seconds=services.OUTBOX_STALE_CLAIM_SECONDS)
    outbox_tenants = set(
        OutboxMessage.objects.all_tenants()
        .filter(
            Q(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=5))
            | Q(status=OutboxMessage.Status.SENDING, claimed_at__lt=stale)
        )
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    event_tenants = set(
        WebhookEvent.objects.all_tenants()
        .filter(status=WebhookEvent.Status.PENDING, received_at__lte=now - timedelta(seconds=30))
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    tenant_ids = sorted(outbox_tenants | event_tenants)
    for tenant_id in tenant_ids:
        channels_flush_tenant_task.apply_async((tenant_id,), expires=30)
    return len(tenant_ids)


@shared_task(ignore_result=True)
def empty_visitor_conversations_prune_task() -> int:
    """Beat: delete the public chat's conversations nobody wrote in (bounded; see the service)."""
    return services.empty_visitor_conversations_prune()
