"""Sync a tenant's store (products, stock, orders) into Morvo's store data.

Products are matched by SKU (a product without one gets ``wc-<id>``); orders by number, with
their customer found or created as a contact (by e-mail or phone) and their items matched by
SKU. Stock that comes back notifies the products' stock alerts after commit, as every other
stock change does. Each page of the sync is written in one transaction; a failing store
leaves the data as it was and records the error on the connection.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm import services
from crm.connectors.woocommerce import WooCommerceClient, WooCommerceError
from crm.models import Contact, Order, OrderItem, Product, StoreConnection
from morvo import tenancy
from morvo.models import Tenant

logger = logging.getLogger(__name__)

ORDER_STATUS = {
    "pending": Order.Status.PENDING,
    "on-hold": Order.Status.PENDING,
    "checkout-draft": Order.Status.PENDING,
    "processing": Order.Status.PAID,
    "completed": Order.Status.DELIVERED,
    "cancelled": Order.Status.CANCELLED,
    "failed": Order.Status.CANCELLED,
    "refunded": Order.Status.REFUNDED,
}


@dataclass
class SyncResult:
    products_created: int = 0
    products_updated: int = 0
    restocked: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _decimal(value: Any, default: str = "0") -> Decimal:
    try:
        number = Decimal(str(value if value not in (None, "") else default))
    except InvalidOperation:
        return Decimal(default)
    return number if number.is_finite() and number >= 0 else Decimal(default)


def _product_fields(row: dict[str, Any], existing: Product | None) -> dict[str, Any]:
    name = str(row.get("name") or "").strip()[:200] or f"#{row.get('id')}"
    managed = bool(row.get("manage_stock")) and row.get("stock_quantity") is not None
    if managed:
        stock = max(int(row["stock_quantity"]), 0)
    elif row.get("stock_status") == "instock":
        # Unmanaged stock only says "in stock": keep a known count, else count it as one.
        stock = max(existing.stock_quantity if existing else 0, 1)
    else:
        stock = 0
    categories = row.get("categories") or []
    images = row.get("images") or []
    fields: dict[str, Any] = {
        "name_en": name,
        "price": _decimal(row.get("price") or row.get("regular_price")).quantize(Decimal("0.01")),
        "stock_quantity": stock,
        "status": Product.Status.ACTIVE if row.get("status") == "publish" else Product.Status.DRAFT,
        "category": str(categories[0].get("name", ""))[:100] if categories and isinstance(categories[0], dict) else "",
        "image_url": str(images[0].get("src", ""))[:200] if images and isinstance(images[0], dict) else "",
    }
    if existing is None:
        fields["name_ar"] = name  # the Arabic name is edited in Morvo; the store's name until then
    return fields


def products_sync(tenant: Tenant, rows: list[dict[str, Any]], result: SyncResult) -> None:
    skus = [str(row.get("sku") or f"wc-{row.get('id')}")[:64] for row in rows]
    existing = {product.sku: product for product in Product.objects.for_tenant(tenant).filter(sku__in=skus)}
    with transaction.atomic():
        for sku, row in zip(skus, rows, strict=True):
            if not isinstance(row, dict) or row.get("type") == "variation":
                result.skipped += 1
                continue
            product = existing.get(sku)
            fields = _product_fields(row, product)
            if product is None:
                created = Product(tenant=tenant, sku=sku, currency=tenant.currency, **fields)
                with tenancy.tenant_context(tenant):
                    created.full_clean()
                created.save()
                result.products_created += 1
                continue
            changes = {name: value for name, value in fields.items() if getattr(product, name) != value}
            if not changes:
                continue
            was_available = product.in_stock and product.status == Product.Status.ACTIVE
            updated = services.product_update(tenant, product.pk, **changes)  # schedules the alerts
            if not was_available and updated.in_stock and updated.status == Product.Status.ACTIVE:
                result.restocked += 1
            result.products_updated += 1


def _customer(tenant: Tenant, billing: dict[str, Any]) -> Contact | None:
    email = str(billing.get("email") or "").strip().lower()
    phone = str(billing.get("phone") or "")
    try:
        phone = services.phone_normalize(phone)
    except services.CrmError:
        phone = ""
    if not email and not phone:
        return None
    found = services._contact_matching(tenant, phone=phone, email=email)
    if found is not None:
        return found
    name = f"{billing.get('first_name') or ''} {billing.get('last_name') or ''}".strip()[:200]
    return Contact.objects.for_tenant(tenant).create(
        tenant=tenant,
        name=name,
        email=email,
        phone=phone,
        language=tenant.default_language,
        lifecycle_stage=Contact.LifecycleStage.CUSTOMER,
    )


def orders_sync(tenant: Tenant, rows: list[dict[str, Any]], result: SyncResult) -> None:
    numbers = [str(row.get("number") or row.get("id"))[:32] for row in rows]
    existing = {order.number: order for order in Order.objects.for_tenant(tenant).filter(number__in=numbers)}
    with transaction.atomic():
        for number, row in zip(numbers, rows, strict=True):
            status = ORDER_STATUS.get(str(row.get("status")), Order.Status.PENDING)
            order = existing.get(number)
            if order is not None:
                if order.status != status:
                    Order.objects.for_tenant(tenant).filter(pk=order.pk).update(status=status)
                    result.orders_updated += 1
                continue
            billing = row.get("billing") or {}
            customer = _customer(tenant, billing)
            created_at = parse_datetime(str(row.get("date_created_gmt") or "")) or timezone.now()
            if timezone.is_naive(created_at):
                created_at = timezone.make_aware(created_at, UTC)
            order = Order.objects.for_tenant(tenant).create(
                tenant=tenant,
                number=number,
                customer=customer,
                customer_name=(customer.name if customer else "")[:200],
                total=_decimal(row.get("total")),
                currency=str(row.get("currency") or tenant.currency)[:3],
                status=status,
                payment_method=str(row.get("payment_method") or "")[:30],
                created_at=created_at,
            )
            skus = [str(item.get("sku") or "") for item in row.get("line_items") or []]
            products = {product.sku: product for product in Product.objects.for_tenant(tenant).filter(sku__in=skus)}
            items = []
            for item, sku in zip(row.get("line_items") or [], skus, strict=True):
                product = products.get(sku)
                if product is None:
                    result.skipped += 1
                    continue
                items.append(
                    OrderItem(
                        tenant=tenant,
                        order=order,
                        product=product,
                        quantity=max(int(item.get("quantity") or 1), 1),
                        unit_price=_decimal(item.get("price")).quantize(Decimal("0.01")),
                    )
                )
            OrderItem.objects.for_tenant(tenant).bulk_create(items)
            if customer is not None and customer.lifecycle_stage != Contact.LifecycleStage.CUSTOMER:
                Contact.objects.for_tenant(tenant).filter(pk=customer.pk).update(
                    lifecycle_stage=Contact.LifecycleStage.CUSTOMER
                )
            result.orders_created += 1


def store_sync(tenant: Tenant, connection_id: int, *, transport: Any = None) -> SyncResult:
    """Sync one of the tenant's store connections. Safe to run twice (upserts by SKU and
    number). Raises :class:`WooCommerceError` after recording it on the connection."""
    connection = StoreConnection.objects.for_tenant(tenant).get(pk=connection_id)
    started: datetime = timezone.now()
    result = SyncResult()
    modified_after = connection.last_synced_at.isoformat() if connection.last_synced_at else None
    try:
        with WooCommerceClient(
            connection.base_url, connection.consumer_key, connection.consumer_secret, transport=transport
        ) as client:
            page: list[dict[str, Any]] = []
            for row in client.products():
                page.append(row)
                if len(page) == 100:
                    products_sync(tenant, page, result)
                    page = []
            if page:
                products_sync(tenant, page, result)
            page = []
            for row in client.orders(modified_after=modified_after):
                page.append(row)
                if len(page) == 100:
                    orders_sync(tenant, page, result)
                    page = []
            if page:
                orders_sync(tenant, page, result)
    except WooCommerceError as error:
        StoreConnection.objects.for_tenant(tenant).filter(pk=connection.pk).update(last_error=str(error)[:1000])
        logger.warning("store sync %s of tenant %s failed: %s", connection.pk, tenant.pk, error)
        raise
    StoreConnection.objects.for_tenant(tenant).filter(pk=connection.pk).update(last_synced_at=started, last_error="")
    logger.info("store sync %s of tenant %s: %s", connection.pk, tenant.pk, result.as_dict())
    return result
