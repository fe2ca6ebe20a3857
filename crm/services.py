"""Writes of the store data."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from crm.models import Contact, Product
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


@transaction.atomic
def contact_upsert(tenant: Tenant, *, name: str = "", email: str = "") -> Contact:
    """The tenant's contact with this e-mail (case-insensitive), created when there is none;
    a given name replaces the stored one. Without an e-mail a new contact is created.

    Precondition: ``name`` and ``email`` are already validated (a form did it).
    """
    name, email = name.strip()[:200], email.strip()
    contact = None
    if email:
        contact = (
            Contact.objects.for_tenant(tenant).select_for_update().filter(email__iexact=email).order_by("id").first()
        )
    if contact is None:
        return Contact.objects.for_tenant(tenant).create(tenant=tenant, name=name, email=email)
    if name and contact.name != name:
        contact.name = name
        contact.save(update_fields=["name"])
    return contact
