"""The brain's services for other apps: ad copy for campaign proposals, analysis for the API."""

from __future__ import annotations

from typing import Any

from agents_app.router import Analysis, analyze


def ad_copy_write(tenant: Any, product: Any, language: str = "ar", channel: str = "instagram") -> dict[str, Any]:
    """Ad copy for ``product`` (a ``crm.Product`` of ``tenant``): headline, body, call_to_action,
    hashtags (list) and image_idea, in ``language``, from the product's facts and the tenant's
    voice (the content specialist's offline writer; deterministic for a product and day)."""
    from django.utils import timezone

    from agents_app.offline_brain import ad_copy
    from agents_app.tools import product_card

    if product.tenant_id != tenant.pk:
        raise ValueError("the product belongs to another tenant")
    language = language if language in ("ar", "en") else "ar"
    seed = (product.pk * 7919 + timezone.now().toordinal()) % 1000 / 1000
    return ad_copy(tenant, product_card(product), language, channel=channel, seed=seed)


def text_analyze(tenant: Any, text: str) -> Analysis:
    """The router's reading of ``text`` for ``tenant`` (products resolved in its catalogue)."""
    return analyze(text, tenant)
