"""Products named in a message, resolved against the tenant's catalogue.

The catalogue's names (Arabic and English) and SKUs are tokenised in normalised form and kept
per tenant for a short time, so resolving costs no query on most turns. A product matches when
the message contains enough of its distinctive name tokens; a message naming a category only
("عطر", "abaya") resolves to nothing here (the brain asks which one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from morvo.text import words

_CACHE_SECONDS = 30.0
_STOPWORDS = {
    "ال",
    "من",
    "في",
    "على",
    "عن",
    "مع",
    "و",
    "او",
    "the",
    "a",
    "an",
    "of",
    "and",
    "for",
    "with",
    "by",
    "ml",
    "مل",
}
_lock = threading.Lock()
_cache: dict[int, tuple[float, list[CatalogueEntry]]] = {}


@dataclass(frozen=True)
class CatalogueEntry:
    product_id: int
    sku: str
    name: str
    tokens: frozenset[str]


def _stem(token: str) -> str:
    # The Arabic article and attached prepositions ("بالعود", "للمسك") do not change the word.
    for prefix in ("وال", "بال", "فال", "كال", "لل", "ال"):
        if token.startswith(prefix) and len(token) - len(prefix) >= 2:
            return token[len(prefix) :]
    return token


def _tokens(text: str) -> set[str]:
    return {_stem(token) for token in words(text) if token not in _STOPWORDS and len(token) > 1}


def catalogue(tenant: Any) -> list[CatalogueEntry]:
    now = time.monotonic()
    cached = _cache.get(tenant.pk)
    if cached and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    from crm.selectors import product_list

    entries = []
    for product_id, sku, name_ar, name_en in product_list(tenant).values_list("pk", "sku", "name_ar", "name_en"):
        entries.append(
            CatalogueEntry(
                product_id=product_id,
                sku=sku.lower(),
                name=name_ar or name_en,
                tokens=frozenset(_tokens(f"{name_ar} {name_en}")),
            )
        )
    with _lock:
        _cache[tenant.pk] = (now, entries)
    return entries


def catalogue_forget(tenant_id: int) -> None:
    _cache.pop(tenant_id, None)
    _frequencies.pop(tenant_id, None)


_frequencies: dict[int, tuple[int, dict[str, int]]] = {}


def _token_frequency(tenant_id: int, entries: list[CatalogueEntry]) -> dict[str, int]:
    """How many product names each token appears in: a token in many names ("عطر", "abaya")
    says little about which product is meant. Kept as long as the catalogue entries are."""
    cached = _frequencies.get(tenant_id)
    if cached and cached[0] == id(entries):
        return cached[1]
    frequency: dict[str, int] = {}
    for entry in entries:
        for token in entry.tokens:
            frequency[token] = frequency.get(token, 0) + 1
    _frequencies[tenant_id] = (id(entries), frequency)
    return frequency


def products_resolve(tenant: Any, text: str, limit: int = 3) -> list[dict[str, Any]]:
    """``[{"id", "name", "score"}]``, best first: products whose distinctive tokens the text names."""
    message = _tokens(text)
    if not message:
        return []
    lowered = text.lower()
    entries = catalogue(tenant)
    frequency = _token_frequency(tenant.pk, entries)
    scored = []
    for entry in entries:
        if not (entry.tokens & message) and not (entry.sku and entry.sku in lowered):
            continue
        if entry.sku and entry.sku in lowered:
            scored.append((1.0, entry))
            continue
        if not entry.tokens:
            continue
        weights = {token: 1.0 / frequency[token] for token in entry.tokens}
        matched = sum(weight for token, weight in weights.items() if token in message)
        distinctive = any(token in message and frequency[token] <= 2 and len(token) >= 3 for token in entry.tokens)
        score = matched / sum(weights.values())
        if distinctive and score >= 0.34:
            scored.append((round(score, 3), entry))
    scored.sort(key=lambda pair: (-pair[0], pair[1].product_id))
    return [{"id": entry.product_id, "name": entry.name, "score": score} for score, entry in scored[:limit]]
