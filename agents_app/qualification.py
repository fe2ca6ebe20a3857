"""Lead qualification of a customer conversation (the extraction agent's job).

With a model configured, ``agents_app.crew.run.extraction_run`` reads the transcript; offline
(or when every provider fails) :func:`qualify_offline` derives the same fields from the
router's analyses and plain patterns: the e-mail address and phone number the customer
typed, the products they asked about, their budget, how urgent and how engaged they are.
Either way the result has one shape (``LEAD_FIELDS``) and is stored through
``crm.services.lead_qualification_record``, which keeps the history.
"""

from __future__ import annotations

import re
from typing import Any

from agents_app.guardrails import EMAIL, PHONE
from agents_app.router import Analysis

LEAD_FIELDS = ("name", "email", "phone", "product_interest", "budget", "urgency")
INTENT_SCORES = {
    "product_inquiry": 70,
    "stock_alert": 80,
    "booking": 85,
    "complaint": 30,
    "human_handoff": 50,
    "greeting": 20,
    "other": 15,
}
_NAME = re.compile(
    r"(?:اسمي|انا اسمي|معك|معاك|my name is|this is|i am|i'm)\s+(?P<name>[^\W\d_]{2,20}(?:\s[^\W\d_]{2,20})?)",
    re.IGNORECASE,
)
_URGENT_WORDS = re.compile(r"ضروري|مستعجل|بسرعه|اليوم|الحين|urgent|asap|today|right now|immediately")


LEAD_INTENTS = ("product_inquiry", "stock_alert", "booking")


def lead_signal(text: str, analysis: Analysis) -> bool:
    """Whether this message can change what is known of the lead: buying intents, a product,
    a budget or a quantity named, or contact details typed. A greeting, thanks or a question
    about shipping leaves the qualification as it was, and costs nothing."""
    from morvo.text import to_ascii_digits

    entities = analysis.entities
    return bool(
        analysis.intent in LEAD_INTENTS
        or entities.get("products")
        or entities.get("budget_amount") is not None
        or entities.get("quantity")
        or EMAIL.search(text)
        or PHONE.search(to_ascii_digits(text))
    )


def qualify_offline(texts: list[str], analyses: list[Analysis]) -> dict[str, Any]:
    """``texts``: the customer's messages, oldest first; ``analyses``: the router's reading of
    each. Returns the lead fields, the three scores 0-100 and recommended labels."""
    from morvo.text import to_ascii_digits

    joined = "\n".join(texts)
    digits = to_ascii_digits(joined)
    email = EMAIL.search(joined)
    phone = PHONE.search(digits)
    name = _NAME.search(joined)
    products: list[dict[str, Any]] = []
    budget: dict[str, Any] | None = None
    for analysis in analyses:
        for product in analysis.entities.get("products") or []:
            if product["id"] not in [known["id"] for known in products]:
                products.append(product)
        if analysis.entities.get("budget_amount") is not None:
            budget = {
                "amount": float(analysis.entities["budget_amount"]),
                "currency": analysis.entities.get("currency"),
            }
    latest = analyses[-1] if analyses else None
    urgent = bool(_URGENT_WORDS.search(joined.lower())) or (latest is not None and latest.priority == "urgent")
    urgency = "high" if urgent else "medium" if latest is not None and latest.priority in ("medium", "high") else "low"
    intent_score = max((INTENT_SCORES.get(analysis.intent, 10) for analysis in analyses), default=0)
    engagement = min(100, 15 * len(texts) + min(40, len(joined) // 20) + (10 if email or phone else 0))
    fit = 40 + (25 if products else 0) + (20 if budget else 0) + (15 if email or phone else 0)
    labels = []
    if products:
        labels.append("interested")
    if any(analysis.intent == "stock_alert" for analysis in analyses):
        labels.append("waiting-for-stock")
    if any(analysis.intent == "booking" for analysis in analyses):
        labels.append("booking")
    if urgency == "high":
        labels.append("urgent")
    return {
        "name": name.group("name").strip() if name else None,
        "email": email.group(0) if email else None,
        "phone": re.sub(r"[\s-]", "", phone.group(0)) if phone else None,
        "product_interest": ", ".join(product["name"] for product in products[:3]) or None,
        "product_ids": [product["id"] for product in products[:3]],
        "budget": budget,
        "urgency": urgency,
        "engagement_score": min(100, engagement),
        "intent_score": intent_score,
        "fit_score": min(100, fit),
        "labels": labels,
    }


def qualification_store(tenant: Any, conversation: Any, lead: dict[str, Any], source: str) -> Any:
    """Store ``lead`` on the conversation's contact (created for a web visitor if missing)."""
    from crm.services import contact_for_conversation, lead_qualification_record

    contact = contact_for_conversation(tenant, conversation)
    if contact is None:
        return None
    scores = {
        "engagement": int(lead["engagement_score"]),
        "intent": int(lead["intent_score"]),
        "fit": int(lead["fit_score"]),
    }
    fields = {name: lead.get(name) for name in (*LEAD_FIELDS, "product_ids")}
    return lead_qualification_record(
        tenant,
        contact,
        scores=scores,
        fields=fields,
        labels=list(lead.get("labels") or []),
        source=source,
        skip_unchanged=True,  # a message that changed nothing in the reading adds no history
    )
