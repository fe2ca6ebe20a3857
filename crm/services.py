"""Writes of the store data."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from crm.models import Product
from morvo.models import Tenant


@transaction.atomic
def product_update(tenant: Tenant, product_id: int, **fields: Any) -> Product:
    """Change a product's stock, price or status. The row is locked so two concurrent stock
    updates cannot interleave."""
    product = Product.objects.for_tenant(tenant).select_for_update().get(pk=product_id)
    for name, value in fields.items():
        setattr(product, name, value)
    product.full_clean()
    product.save(update_fields=[*fields, "updated_at"])
    return product
