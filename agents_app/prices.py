"""LLM prices in US dollars per million tokens (input, output), as published by the providers.

A step's cost is computed when the call is made and stored with the unit prices used, so
changing this table never rewrites past costs. ``MORVO_LLM_PRICES`` (JSON: ``{"model":
[input, output]}``) adds or overrides entries, e.g. for a self-hosted model (``[0, 0]``).
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings

PRICES_PER_MILLION: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-5": (Decimal("1.25"), Decimal("10.00")),
    "gpt-5-mini": (Decimal("0.25"), Decimal("2.00")),
    "gpt-5-nano": (Decimal("0.05"), Decimal("0.40")),
    "text-embedding-3-small": (Decimal("0.02"), Decimal("0")),
    "text-embedding-3-large": (Decimal("0.13"), Decimal("0")),
}


def price_for(model: str) -> tuple[Decimal, Decimal] | None:
    """(input, output) per million tokens for ``model`` (a provider prefix such as ``openai/`` and a
    date suffix such as ``-2024-07-18`` are ignored), or None when unknown."""
    overrides = getattr(settings, "MORVO_LLM_PRICES", "") or ""
    table = dict(PRICES_PER_MILLION)
    if overrides:
        for name, pair in json.loads(overrides).items():
            table[name] = (Decimal(str(pair[0])), Decimal(str(pair[1])))
    name = model.split("/", 1)[-1]
    if name in table:
        return table[name]
    for known in sorted(table, key=len, reverse=True):
        if name.startswith(known + "-"):
            return table[known]
    return None


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """(cost, input price, output price); an unknown model costs 0 with no prices recorded."""
    prices = price_for(model)
    if prices is None:
        return Decimal("0"), None, None
    input_price, output_price = prices
    cost = (Decimal(prompt_tokens) * input_price + Decimal(completion_tokens) * output_price) / Decimal(1_000_000)
    return cost.quantize(Decimal("0.000001")), input_price, output_price
