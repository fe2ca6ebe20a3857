"""Reads of the store data. ``tenant`` first, always."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from crm.models import (
    DEFAULT_BUSINESS_HOURS,
    Appointment,
    BusinessHours,
    Contact,
    ContactIdentity,
    Order,
    Product,
    Segment,
    StockAlert,
)
from morvo.models import Tenant


def product_list(tenant: Tenant) -> QuerySet[Product]:
    return Product.objects.for_tenant(tenant)


def order_list(tenant: Tenant) -> QuerySet[Order]:
    return Order.objects.for_tenant(tenant)


@dataclass(frozen=True)
class StoreHeadline:
    orders_30d: int
    revenue_30d: Decimal
    currency: str
    stock_outs: int
    products: int


def store_headline(tenant: Tenant, days: int = 30) -> StoreHeadline:
    """Orders and revenue over the last ``days`` days (revenue counts paid/shipped/delivered
    orders), and how many active products are out of stock."""
    since = timezone.now() - timedelta(days=days)
    orders = Order.objects.for_tenant(tenant).filter(created_at__gte=since)
    totals = orders.filter(status__in=Order.REVENUE_STATUSES).aggregate(revenue=Sum("total"))
    products = Product.objects.for_tenant(tenant).filter(status=Product.Status.ACTIVE)
    counts = products.aggregate(all=Count("id"), out=Count("id", filter=Q(stock_quantity__lte=0)))
    return StoreHeadline(
        orders_30d=orders.count(),
        revenue_30d=totals["revenue"] or Decimal("0"),
        currency=tenant.currency,
        stock_outs=counts["out"],
        products=counts["all"],
    )


# --- CRM --------------------------------------------------------------------------------------


def contact_list(tenant: Tenant) -> QuerySet[Contact]:
    return Contact.objects.for_tenant(tenant)


def segment_contacts(tenant: Tenant, segment: Segment | dict[str, Any]) -> QuerySet[Contact]:
    """The contacts in a segment: one SQL query over labels (array containment/overlap),
    lifecycle stage, language, lead score, custom attributes (JSON containment), activity and
    channels. ``segment`` is a Segment or a cleaned definition."""
    definition = segment.definition if isinstance(segment, Segment) else segment
    contacts = Contact.objects.for_tenant(tenant)
    contacts = contacts.filter(blocked=False) if not definition.get("blocked", False) else contacts.filter(blocked=True)
    if definition.get("labels_all"):
        contacts = contacts.filter(labels__contains=definition["labels_all"])
    if definition.get("labels_any"):
        contacts = contacts.filter(labels__overlap=definition["labels_any"])
    if definition.get("labels_none"):
        contacts = contacts.exclude(labels__overlap=definition["labels_none"])
    if definition.get("lifecycle_stages"):
        contacts = contacts.filter(lifecycle_stage__in=definition["lifecycle_stages"])
    if definition.get("languages"):
        contacts = contacts.filter(language__in=definition["languages"])
    if definition.get("min_score") is not None:
        contacts = contacts.filter(lead_score__gte=definition["min_score"])
    if definition.get("max_score") is not None:
        contacts = contacts.filter(lead_score__lte=definition["max_score"])
    if definition.get("attributes"):
        contacts = contacts.filter(attributes__contains=definition["attributes"])
    now = timezone.now()
    if definition.get("active_within_days") is not None:
        contacts = contacts.filter(last_activity_at__gte=now - timedelta(days=definition["active_within_days"]))
    if definition.get("inactive_for_days") is not None:
        cutoff = now - timedelta(days=definition["inactive_for_days"])
        contacts = contacts.filter(Q(last_activity_at__lt=cutoff) | Q(last_activity_at__isnull=True))
    if definition.get("channel_types"):
        identities = ContactIdentity.objects.for_tenant(tenant).filter(
            contact=OuterRef("pk"), channel_type__in=definition["channel_types"]
        )
        contacts = contacts.filter(Exists(identities))
    return contacts


def business_hours_for(tenant: Tenant, day: date) -> tuple[time, time] | None:
    """(opens, closes) on ``day`` in the tenant's time zone, or None when closed. A tenant
    that set no hours uses DEFAULT_BUSINESS_HOURS; one that set some is closed on the others."""
    rows = list(BusinessHours.objects.for_tenant(tenant).values_list("weekday", "opens", "closes"))
    if not rows:
        return DEFAULT_BUSINESS_HOURS.get(day.weekday())
    for weekday, opens, closes in rows:
        if weekday == day.weekday():
            return opens, closes
    return None


def appointment_slots_free(
    tenant: Tenant, day: date, service: str = "", *, duration_minutes: int = 60
) -> list[datetime]:
    """Free start times (aware, in the tenant's time zone) on ``day``: every
    ``CRM_APPOINTMENT_SLOT_MINUTES`` (60) from opening, where an appointment of
    ``duration_minutes`` fits before closing, does not overlap an active appointment, and
    starts in the future. ``service`` is accepted for callers that know it; the tenant has one
    calendar."""
    import zoneinfo

    from django.conf import settings

    hours = business_hours_for(tenant, day)
    if hours is None:
        return []
    zone = zoneinfo.ZoneInfo(tenant.timezone or "Asia/Riyadh")
    step = timedelta(minutes=getattr(settings, "CRM_APPOINTMENT_SLOT_MINUTES", 60))
    length = timedelta(minutes=duration_minutes)
    opens = datetime.combine(day, hours[0], tzinfo=zone)
    closes = datetime.combine(day, hours[1], tzinfo=zone)
    busy = list(
        Appointment.objects.for_tenant(tenant)
        .filter(status__in=Appointment.ACTIVE_STATUSES, start__lt=closes, end__gt=opens)
        .values_list("start", "end")
    )
    now = timezone.now()
    slots = []
    start = opens
    while start + length <= closes:
        end = start + length
        if start > now and not any(taken_start < end and taken_end > start for taken_start, taken_end in busy):
            slots.append(start)
        start += step
    return slots


@dataclass(frozen=True)
class StockAlertQueueRow:
    product_id: int
    sku: str
    name: str
    stock_quantity: int
    pending: int


def stock_alert_queue(tenant: Tenant) -> list[StockAlertQueueRow]:
    """Products with pending stock alerts, the most awaited first."""
    rows = (
        StockAlert.objects.for_tenant(tenant)
        .filter(status=StockAlert.Status.PENDING)
        .values("product_id", "product__sku", "product__name_ar", "product__stock_quantity")
        .annotate(pending=Count("id"))
        .order_by("-pending", "product_id")
    )
    return [
        StockAlertQueueRow(
            product_id=row["product_id"],
            sku=row["product__sku"],
            name=row["product__name_ar"],
            stock_quantity=row["product__stock_quantity"],
            pending=row["pending"],
        )
        for row in rows
    ]
