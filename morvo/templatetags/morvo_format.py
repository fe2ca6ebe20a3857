from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()


@register.filter
def amount(value: Any) -> str:
    """``1350.5`` → ``1,350.50`` in every language: Gulf stores print prices with Latin
    digits, a comma for thousands and a point for decimals (Django's Arabic format would
    give ``1.350,50``)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return f"{number:,.2f}"
