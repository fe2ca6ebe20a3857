"""POST /api/v1/agents/analyze and the run traces: shape, bad input, anonymous, tenancy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from agents_app.models import AgentRun, AgentStep
from agents_app.router.products import catalogue_forget
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_analyze_returns_exactly_the_router_contract(two_tenants):
    product = ProductFactory(tenant=two_tenants.a.tenant, name_ar="عباية كريب سوداء", name_en="Black Crepe Abaya")
    catalogue_forget(two_tenants.a.tenant.pk)
    response = two_tenants.a.api.post(
        "/api/v1/agents/analyze", {"text": "بكم العباية الكريب السوداء مقاس L؟"}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"language", "intent", "priority", "sentiment", "confidence", "entities"}
    assert data["language"] == "ar"
    assert data["intent"] == "product_inquiry"
    assert data["priority"] == "medium"
    assert data["entities"]["products"][0]["id"] == product.pk
    assert data["entities"]["size"] == "L"
    assert data["entities"]["budget_amount"] is None
    assert set(data["entities"]) == {
        "products",
        "budget_amount",
        "currency",
        "quantity",
        "size",
        "dates",
        "times",
        "channels",
    }


def test_analyze_reads_budgets_and_channels(two_tenants):
    response = two_tenants.a.api.post(
        "/api/v1/agents/analyze", {"text": "plan a campaign on snapchat with a budget of 5,000 SAR"}, format="json"
    )
    data = response.json()
    assert data["intent"] == "campaign_strategy"
    assert Decimal(data["entities"]["budget_amount"]) == Decimal("5000")
    assert data["entities"]["currency"] == "SAR"
    assert data["entities"]["channels"] == ["snapchat"]


def test_analyze_resolves_products_only_in_the_callers_catalogue(two_tenants):
    theirs = ProductFactory(tenant=two_tenants.b.tenant, name_ar="دهن عود كمبودي ملكي", name_en="Royal Cambodian Oud")
    catalogue_forget(two_tenants.a.tenant.pk)
    catalogue_forget(two_tenants.b.tenant.pk)
    mine = two_tenants.a.api.post("/api/v1/agents/analyze", {"text": "Royal Cambodian Oud price?"}, format="json")
    assert mine.json()["entities"]["products"] == []
    own = two_tenants.b.api.post("/api/v1/agents/analyze", {"text": "Royal Cambodian Oud price?"}, format="json")
    assert [entry["id"] for entry in own.json()["entities"]["products"]] == [theirs.pk]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"text": "hi", "tenant": 2}, "tenant"),
        ({"text": ["a"]}, "text"),
    ],
)
def test_analyze_rejects_bad_input_with_a_field_error(two_tenants, payload, field):
    response = two_tenants.a.api.post("/api/v1/agents/analyze", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_analyze_refuses_anonymous_callers():
    response = APIClient().post("/api/v1/agents/analyze", {"text": "hello"}, format="json")
    assert response.status_code == 401


def _run(tenant):
    run = AgentRun.objects.for_tenant(tenant).create(tenant=tenant, intent="greeting", brain="offline")
    AgentStep.objects.for_tenant(tenant).create(tenant=tenant, run=run, kind="stage", name="analyse", latency_ms=4)
    return run


def test_runs_are_listed_with_their_steps(two_tenants):
    run = _run(two_tenants.a.tenant)
    _run(two_tenants.b.tenant)
    response = two_tenants.a.api.get("/api/v1/agents/runs")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["id"] for row in results] == [run.pk]
    assert results[0]["steps"] == [
        {
            "position": 0,
            "kind": "stage",
            "name": "analyse",
            "provider": "",
            "model": "",
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": "0.000000",
            "latency_ms": 4,
            "error": "",
        }
    ]


def test_another_tenants_run_is_a_404(two_tenants):
    run = _run(two_tenants.a.tenant)
    two_tenants.assert_isolated(f"/api/v1/agents/runs/{run.pk}")
