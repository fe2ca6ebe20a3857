"""The autopilot's Celery tasks: the beat fan-out and one job per tenant."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from campaigns import services
from campaigns.models import AdCampaign, AutopilotSettings
from morvo.celery import tenant_task
from morvo.models import Tenant


@tenant_task(acks_late=True, ignore_result=True)
def campaigns_tenant_tick_task(tenant: Tenant) -> dict[str, Any]:
    """One tenant's tick: evaluate what is due in its slot, then the day's proposals.
    Idempotent: a second run in the same slot finds nothing left to claim."""
    report = services.campaigns_tick(tenant)
    proposed = services.campaigns_propose_daily(tenant)
    return {**report.as_json(), "proposed": len(proposed)}


@shared_task(ignore_result=True)
def campaigns_tick_task() -> int:
    """Beat: one job per active tenant with a live campaign or daily proposals turned on.
    Each job expires before the next beat, so a backlog never piles up."""
    live = (
        AdCampaign.objects.all_tenants()
        .filter(status__in=AdCampaign.LOOP_STATUSES, tenant__is_active=True)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    proposing = (
        AutopilotSettings.objects.all_tenants()
        .filter(auto_propose=True, tenant__is_active=True)
        .values_list("tenant_id", flat=True)
    )
    tenant_ids = sorted(set(live) | set(proposing))
    for tenant_id in tenant_ids:
        campaigns_tenant_tick_task.apply_async((tenant_id,), expires=settings.CAMPAIGNS_BEAT_SECONDS)
    return len(tenant_ids)
