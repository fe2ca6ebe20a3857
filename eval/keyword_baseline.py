"""The keyword-list intent router of Morvo's original design, kept as the evaluation baseline.

A handful of Arabic keywords per intent (Modern Standard spellings, as a shop owner would
first think of them) and a few English ones. The message is normalised with the one Arabic
normaliser; Arabic keywords match anywhere in the text (Arabic glues prefixes and suffixes to
words: "والحجز", "بالمبيعات"), English keywords match as whole words. Intents are tried in a
fixed order, the first match wins, and nothing matching means ``other``.
"""

from __future__ import annotations

import re

from morvo.text import normalize_arabic

# (intent, Arabic keywords, English keywords). The order is the priority: the intents that
# need a person or an action first, then the companion intents, then questions and greetings.
KEYWORDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("human_handoff", ("موظف", "خدمة العملاء", "شخص حقيقي", "المدير"), ("human", "real person", "agent")),
    ("complaint", ("شكوى", "مشكلة", "متأخر", "مكسور", "استرجاع"), ("complaint", "broken", "refund", "late")),
    ("stock_alert", ("تنبيه", "إشعار", "نبهني", "يتوفر"), ("notify", "restock", "back in stock")),
    ("booking", ("حجز", "موعد", "احجز"), ("book", "appointment", "reservation")),
    ("seo", ("كلمات مفتاحية", "جوجل", "محركات البحث", "سيو"), ("seo", "keyword", "keywords", "google")),
    ("campaign_strategy", ("حملة", "ميزانية", "استراتيجية", "خطة"), ("campaign", "budget", "strategy")),
    ("content_creation", ("منشور", "اكتب", "محتوى", "هاشتاق"), ("post", "caption", "write")),
    ("analytics_report", ("تقرير", "مبيعات", "إيرادات", "إحصائيات"), ("report", "sales", "revenue")),
    ("product_inquiry", ("سعر", "بكم", "متوفر", "مقاس"), ("price", "how much", "available", "size")),
    ("greeting", ("السلام عليكم", "مرحبا", "أهلا", "صباح الخير", "مساء الخير"), ("hello", "hi", "good morning")),
)
FALLBACK_INTENT = "other"

_RULES: tuple[tuple[str, tuple[str, ...], tuple[re.Pattern[str], ...]], ...] = tuple(
    (
        intent,
        tuple(normalize_arabic(keyword) for keyword in arabic),
        tuple(re.compile(rf"\b{re.escape(keyword)}\b") for keyword in english),
    )
    for intent, arabic, english in KEYWORDS
)


def keyword_intent(text: str) -> str:
    """The intent of the first rule with a keyword in ``text``, else ``other``."""
    normalised = normalize_arabic(text)
    for intent, arabic, english in _RULES:
        if any(keyword in normalised for keyword in arabic) or any(p.search(normalised) for p in english):
            return intent
    return FALLBACK_INTENT
