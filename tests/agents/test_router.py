"""The router: Arabic normalisation, intents, priority, sentiment and entities."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agents_app.router import analyze, priority_for
from agents_app.router.entities import extract
from agents_app.router.offline import EXAMPLES_PATH, classifier, load_examples
from agents_app.router.products import catalogue_forget, products_resolve
from agents_app.router.sentiment import sentiment_score
from morvo.text import normalize_arabic, to_ascii_digits
from tests.factories import ProductFactory

EVAL_DATA = Path(__file__).resolve().parents[2] / "eval" / "data"
TODAY = date(2026, 11, 21)  # a Saturday


def test_normaliser_folds_spelling_variants_into_one_form():
    assert normalize_arabic("أَهْلاً وَسَهْلاً") == "اهلا وسهلا"
    assert normalize_arabic("إستراتيجيّة") == "استراتيجيه"
    assert normalize_arabic("مســـاء") == "مساء"
    assert normalize_arabic("مستشفى") == "مستشفي"
    assert normalize_arabic("آلاف") == "الاف"
    assert normalize_arabic("٢٠٢٦ ۱۲") == "2026 12"
    assert normalize_arabic("كيف الحال؟  Hello") == "كيف الحال? hello"
    assert to_ascii_digits("٣٫٥") == "3.5"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("كم كانت مبيعاتي الشهر اللي فات؟", "analytics_report"),
        ("Show me revenue for the last 30 days", "analytics_report"),
        ("اكتب لي بوست انستقرام عن دهن العود", "content_creation"),
        ("عايز خطة حملة إعلانية لعيد الأضحى بميزانية ٥ آلاف", "campaign_strategy"),
        ("what keywords should my product pages rank for?", "seo"),
        ("بكم العباية السوداء؟ وهل متوفر مقاس ٥٦؟", "product_inquiry"),
        ("بليز خبروني لما يرجع المسك الأبيض", "stock_alert"),
        ("بدي احجز موعد بكرا الساعة ٥", "booking"),
        ("الطلب وصلني مكسور وما حد يرد علي!!", "complaint"),
        ("ابي اكلم موظف حقيقي لو سمحت", "human_handoff"),
        ("السلام عليكم", "greeting"),
        ("what's the weather like in Dubai tomorrow?", "other"),
    ],
)
def test_intents_in_arabic_varieties_and_english(text, intent):
    assert analyze(text).intent == intent


def test_training_examples_classify_each_other_well():
    """Leave-one-out over the shipped examples: a regression in the classifier or the data
    shows here before it shows in ``make eval``."""
    assert classifier().leave_one_out_accuracy() >= 0.85


def test_no_evaluation_utterance_is_a_training_example():
    training = {normalize_arabic(row["text"]) for row in load_examples(EXAMPLES_PATH)}
    with (EVAL_DATA / "intents_eval.jsonl").open(encoding="utf-8") as handle:
        evaluation = [json.loads(line)["text"] for line in handle if line.strip()]
    assert len(evaluation) >= 300
    assert not [text for text in evaluation if normalize_arabic(text) in training]


def test_priority_follows_intent_and_strong_negative_sentiment():
    assert priority_for("complaint", -0.2) == "high"
    assert priority_for("complaint", -0.6) == "urgent"
    assert priority_for("human_handoff", -0.9) == "urgent"
    assert priority_for("booking", -0.9) == "medium"
    assert priority_for("seo", 0.5) == "medium"
    assert priority_for("greeting", 0.9) == "low"
    assert priority_for("other", -0.9) == "low"


def test_angry_complaint_is_urgent():
    analysis = analyze("أسوأ متجر! الطلب متأخر أسبوعين والعطر مغشوش ومحد يرد 😡😡")
    assert analysis.intent == "complaint"
    assert analysis.sentiment <= -0.6
    assert analysis.priority == "urgent"


def test_sentiment_sign_negation_and_range():
    assert sentiment_score("شكرا العطر روعة وريحته تجنن") > 0.5
    assert sentiment_score("the delivery was terrible and late") < -0.5
    assert sentiment_score("مو حلو") < 0
    assert sentiment_score("not bad") > 0
    assert sentiment_score("متى يوصل الطلب") == 0
    assert -1 <= sentiment_score("😡" * 40) <= 1


def _entities_cases():
    with (EVAL_DATA / "entities.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("case", _entities_cases(), ids=lambda case: case["text"][:40])
def test_entities_from_the_labelled_set(case):
    got = extract(case["text"], TODAY)
    expected = case["expected"]
    if "budget_amount" in expected:
        assert got.budget_amount == Decimal(str(expected["budget_amount"]))
    else:
        assert got.budget_amount is None
    if "currency" in expected:
        assert got.currency == expected["currency"]
    if "quantity" in expected:
        assert got.quantity == expected["quantity"]
    else:
        assert got.quantity is None
    if "size" in expected:
        assert (got.size or "").lower().replace(" ", "") == str(expected["size"]).lower().replace(" ", "")
    if "date" in expected:
        assert any(all(entry.get(key) == value for key, value in expected["date"].items()) for entry in got.dates)
    if "time" in expected:
        assert expected["time"] in got.times
    if "channel" in expected:
        assert expected["channel"] in got.channels


def test_dates_resolve_against_today():
    entities = extract("ابي موعد يوم الخميس", TODAY)
    assert entities.dates == [{"weekday": "thursday", "date": "2026-11-26"}]
    assert extract("بعد بكرة", TODAY).dates == [{"relative_days": 2, "date": "2026-11-23"}]
    assert extract("on March 20", TODAY).dates == [{"month": 3, "day": 20, "date": "2027-03-20"}]


@pytest.mark.django_db
def test_products_resolve_in_the_tenants_catalogue_only(two_tenants):
    mine = ProductFactory(tenant=two_tenants.a.tenant, name_ar="دهن عود كمبودي ملكي", name_en="Royal Cambodian Oud")
    ProductFactory(tenant=two_tenants.a.tenant, name_ar="مسك الطهارة الأبيض", name_en="White Musk")
    theirs = ProductFactory(tenant=two_tenants.b.tenant, name_ar="دهن عود كمبودي فاخر", name_en="Cambodian Oud Deluxe")
    for tenant in (two_tenants.a.tenant, two_tenants.b.tenant):
        catalogue_forget(tenant.pk)

    found = products_resolve(two_tenants.a.tenant, "بكم دهن العود الكمبودي؟")
    assert [entry["id"] for entry in found] == [mine.pk]
    assert theirs.pk not in [entry["id"] for entry in products_resolve(two_tenants.a.tenant, "Cambodian Oud Deluxe")]

    analysis = analyze("is the royal cambodian oud in stock?", two_tenants.b.tenant)
    assert mine.pk not in [entry["id"] for entry in analysis.entities["products"]]


def test_analysis_has_exactly_the_documented_fields():
    data = analyze("budget 3k AED on instagram").as_dict()
    assert set(data) == {"language", "intent", "priority", "sentiment", "confidence", "entities"}
    assert data["language"] == "en"
    assert data["entities"]["budget_amount"] == "3000"
    assert data["entities"]["currency"] == "AED"
    assert data["entities"]["channels"] == ["instagram"]
    assert 0 < data["confidence"] <= 1
