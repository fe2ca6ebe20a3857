"""Reads of the store data. ``tenant`` first, always."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from crm.models import Order, Product
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
