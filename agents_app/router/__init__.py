"""Understanding one message: language, intent, priority, sentiment, confidence, entities.

``analyze(text, tenant)`` is the router every entry point uses (the chat turn, the inbox,
``POST /api/v1/agents/analyze``). The offline router (``offline``, ``entities``,
``sentiment``, ``products``) always works; when an LLM provider is configured for the router
role, ``analyze_with_llm`` asks the cheap model and falls back to the offline answer on any
failure or an answer outside the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agents_app.language import detect_language
from agents_app.router.entities import extract
from agents_app.router.offline import INTENTS, classifier
from agents_app.router.sentiment import sentiment_score

PRIORITY_BY_INTENT = {
    "complaint": "high",
    "human_handoff": "high",
    "product_inquiry": "medium",
    "stock_alert": "medium",
    "booking": "medium",
    "analytics_report": "medium",
    "content_creation": "medium",
    "campaign_strategy": "medium",
    "seo": "medium",
    "greeting": "low",
    "other": "low",
}
# A complaint or handoff this negative is urgent.
URGENT_SENTIMENT = -0.6
COMPANION_INTENTS = ("analytics_report", "content_creation", "campaign_strategy", "seo")


@dataclass
class Analysis:
    language: str
    intent: str
    priority: str
    sentiment: float
    confidence: float
    entities: dict[str, Any] = field(default_factory=dict)
    source: str = "offline"
    scores: dict[str, float] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "intent": self.intent,
            "priority": self.priority,
            "sentiment": self.sentiment,
            "confidence": self.confidence,
            "entities": self.entities,
        }


def priority_for(intent: str, sentiment: float) -> str:
    priority = PRIORITY_BY_INTENT[intent]
    if priority == "high" and sentiment <= URGENT_SENTIMENT:
        return "urgent"
    return priority


def analyze(text: str, tenant: Any = None, *, today: date | None = None) -> Analysis:
    """The offline analysis of ``text``. With a tenant, named products are resolved against its
    catalogue and dates against its calendar (``today`` in the tenant's time zone)."""
    text = text or ""
    result = classifier().classify(text)
    sentiment = sentiment_score(text)
    if result.intent == "complaint" and sentiment > 0:
        sentiment = round(-sentiment / 2, 3)
    if today is None and tenant is not None:
        today = tenant_today(tenant)
    entities = extract(text, today).as_dict()
    if tenant is not None:
        from agents_app.router.products import products_resolve

        entities["products"] = products_resolve(tenant, text)
    return Analysis(
        language=detect_language(text, default=getattr(tenant, "default_language", "ar") or "ar"),
        intent=result.intent,
        priority=priority_for(result.intent, sentiment),
        sentiment=sentiment,
        confidence=result.confidence,
        entities=entities,
        scores=result.scores,
    )


def tenant_today(tenant: Any) -> date:
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    return timezone.now().astimezone(ZoneInfo(tenant.timezone or "UTC")).date()


__all__ = ["COMPANION_INTENTS", "INTENTS", "Analysis", "analyze", "priority_for"]
