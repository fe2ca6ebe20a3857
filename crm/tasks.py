"""CRM tasks. Beat jobs fan out one job per tenant with work waiting; every job is safe to
run twice (alerts and reminders are claimed atomically)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from crm import services
from crm.models import Appointment, FollowUp, Product, StockAlert
from morvo.celery import tenant_task
from morvo.models import Tenant


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def stock_alert_notify_task(tenant: Tenant, product_id: int) -> dict[str, int]:
    """Notify the product's pending alerts. Idempotent: notified alerts are not pending."""
    return services.stock_alerts_notify(tenant, product_id)


@tenant_task
def stock_alerts_check_tenant_task(tenant: Tenant) -> int:
    """Expire old alerts, then notify the alerts of products that are available again."""
    services.stock_alerts_expire(tenant)
    product_ids = list(
        StockAlert.objects.for_tenant(tenant)
        .filter(
            status=StockAlert.Status.PENDING,
            product__stock_quantity__gt=0,
            product__status=Product.Status.ACTIVE,
        )
        .values_list("product_id", flat=True)
        .order_by("product_id")
        .distinct()
    )
    for product_id in product_ids:
        stock_alert_notify_task.apply_async((tenant.pk, product_id), expires=3600)
    return len(product_ids)


@shared_task(ignore_result=True)
def stock_alerts_check_task() -> int:
    """Beat (hourly): one check per tenant with pending alerts."""
    tenant_ids = list(
        StockAlert.objects.all_tenants()
        .filter(status=StockAlert.Status.PENDING, tenant__is_active=True)
        .values_list("tenant_id", flat=True)
        .order_by("tenant_id")
        .distinct()
    )
    for tenant_id in tenant_ids:
        stock_alerts_check_tenant_task.apply_async((tenant_id,), expires=3600)
    return len(tenant_ids)


@tenant_task
def follow_up_reminders_tenant_task(tenant: Tenant) -> int:
    return services.follow_up_reminders_send(tenant)


@shared_task(ignore_result=True)
def follow_up_reminders_task() -> int:
    """Beat: one job per tenant with a follow-up due and not yet reminded."""
    tenant_ids = list(
        FollowUp.objects.all_tenants()
        .filter(status=FollowUp.Status.PENDING, reminded_at__isnull=True, due_at__lte=timezone.now())
        .values_list("tenant_id", flat=True)
        .order_by("tenant_id")
        .distinct()
    )
    for tenant_id in tenant_ids:
        follow_up_reminders_tenant_task.apply_async((tenant_id,), expires=300)
    return len(tenant_ids)


@tenant_task
def appointment_reminders_tenant_task(tenant: Tenant) -> dict[str, Any]:
    return services.appointment_reminders_send(tenant)


@shared_task(ignore_result=True)
def appointment_reminders_task() -> int:
    """Beat: one job per tenant with an appointment in the next 24 hours still to remind."""
    now = timezone.now()
    soon = Appointment.objects.all_tenants().filter(
        status__in=Appointment.ACTIVE_STATUSES, start__gt=now, start__lte=now + services.APPOINTMENT_REMINDERS["24h"]
    )
    waiting = soon.filter(reminded_24h_at__isnull=True) | soon.filter(
        reminded_1h_at__isnull=True, start__lte=now + services.APPOINTMENT_REMINDERS["1h"]
    )
    tenant_ids = list(waiting.values_list("tenant_id", flat=True).order_by("tenant_id").distinct())
    for tenant_id in tenant_ids:
        appointment_reminders_tenant_task.apply_async((tenant_id,), expires=300)
    return len(tenant_ids)


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def store_sync_task(tenant: Tenant, connection_id: int) -> dict[str, int] | None:
    """Sync one store connection; a store that refuses is recorded on the connection."""
    from crm.connectors.sync import store_sync
    from crm.connectors.woocommerce import WooCommerceError

    try:
        return store_sync(tenant, connection_id).as_dict()
    except WooCommerceError:
        return None


@shared_task(ignore_result=True)
def store_sync_all_task() -> int:
    """Beat: one sync per active store connection."""
    from crm.models import StoreConnection

    connections = list(
        StoreConnection.objects.all_tenants()
        .filter(is_active=True, tenant__is_active=True)
        .values_list("tenant_id", "pk")
        .order_by("pk")
    )
    for tenant_id, connection_id in connections:
        store_sync_task.apply_async((tenant_id, connection_id), expires=900)
    return len(connections)
