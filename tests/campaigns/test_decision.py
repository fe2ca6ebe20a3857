"""The decision table, boundary by boundary, in exact decimals (the engine and the API)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from campaigns import decision
from campaigns.decision import Inputs, Thresholds


def inputs(**overrides):
    base = {
        "baseline_sales": D("100"),
        "current_sales": D("100"),
        "baseline_views": D("100"),
        "current_views": D("100"),
        "revenue": D("200"),
        "cost": D("100"),
        "new_customers": 5,
        "product_price": D("50"),
    }
    return Inputs(**{**base, **overrides})


def test_impact_with_a_zero_baseline():
    assert decision.impact(D("0"), D("0")) == D("0")
    assert decision.impact(D("0"), D("7")) == D("100")
    assert decision.impact(D("4"), D("5")) == D("25")
    assert decision.impact(D("3"), D("2")) == D("-33.33333333333333333333333333")


def test_roas_and_cpa_are_null_without_cost_or_customers():
    figures = decision.decide(inputs(cost=D("0"), revenue=D("0"), new_customers=0))
    assert (figures.roas, figures.cpa, figures.decision) == (None, None, "MONITOR")


def test_figures_are_exact():
    figures = decision.decide(inputs(current_sales=D("130"), current_views=D("105"), revenue=D("250"), cost=D("100")))
    assert figures.sales_impact == D("30")
    assert figures.view_impact == D("5")
    assert figures.roas == D("1.5")
    assert figures.cpa == D("20")
    assert figures.efficiency_score == D("20.0")
    assert figures.decision == "OPTIMIZE"


@pytest.mark.parametrize(
    ("overrides", "expected", "rule"),
    [
        # EMERGENCY_PAUSE: roas < 0 (roas exactly 0 is not)
        ({"revenue": D("100"), "cost": D("100")}, "MONITOR", "flat"),
        ({"revenue": D("99.99"), "cost": D("100")}, "EMERGENCY_PAUSE", "roas_negative"),
        # cpa > product_price (equal is not)
        ({"cost": D("250"), "revenue": D("1000"), "new_customers": 5}, "MONITOR", "flat"),
        ({"cost": D("250.05"), "revenue": D("1000"), "new_customers": 5}, "EMERGENCY_PAUSE", "cpa_above_price"),
        # no new customers and cost > price (equal is not)
        ({"cost": D("50"), "revenue": D("60"), "new_customers": 0}, "MONITOR", "flat"),
        (
            {"cost": D("50.01"), "revenue": D("60"), "new_customers": 0},
            "EMERGENCY_PAUSE",
            "no_customers_cost_above_price",
        ),
        # emergency wins over everything below it
        ({"revenue": D("1"), "current_sales": D("200"), "current_views": D("200")}, "EMERGENCY_PAUSE", "roas_negative"),
        # PAUSE: sales_impact < -10 (exactly -10 is not)
        ({"current_sales": D("90")}, "MONITOR", "flat"),
        ({"baseline_sales": D("1000000"), "current_sales": D("899999.99")}, "PAUSE", "sales_falling"),
        # PAUSE: view_impact < -5 (exactly -5 is not)
        ({"current_views": D("95")}, "MONITOR", "flat"),
        ({"baseline_views": D("1000000"), "current_views": D("949999.99")}, "PAUSE", "views_falling"),
        # PAUSE before CONTINUE
        ({"current_sales": D("200"), "current_views": D("94")}, "PAUSE", "views_falling"),
        # CONTINUE: sales > 15 and views > 10, strictly
        ({"current_sales": D("115.01"), "current_views": D("110.01")}, "CONTINUE", "both_rising"),
        ({"current_sales": D("115"), "current_views": D("110.01")}, "OPTIMIZE", "sales_moderate"),
        ({"current_sales": D("115.01"), "current_views": D("110")}, "OPTIMIZE", "views_moderate"),
        # OPTIMIZE: 5 <= sales <= 15, or 5 <= views <= 10
        ({"current_sales": D("105")}, "OPTIMIZE", "sales_moderate"),
        ({"current_sales": D("104.99")}, "MONITOR", "flat"),
        ({"current_views": D("105")}, "OPTIMIZE", "views_moderate"),
        ({"current_views": D("104.99")}, "MONITOR", "flat"),
        ({"current_views": D("110"), "current_sales": D("80")}, "PAUSE", "sales_falling"),
        ({"current_views": D("110"), "current_sales": D("95")}, "OPTIMIZE", "views_moderate"),
        # sales far up but views flat: neither CONTINUE nor OPTIMIZE band
        ({"current_sales": D("120"), "current_views": D("104")}, "MONITOR", "flat"),
        ({"current_sales": D("120"), "current_views": D("110.5")}, "CONTINUE", "both_rising"),
        # zero baselines count as +100
        (
            {"baseline_sales": D("0"), "current_sales": D("1"), "baseline_views": D("0"), "current_views": D("3")},
            "CONTINUE",
            "both_rising",
        ),
    ],
)
def test_decision_table_boundaries(overrides, expected, rule):
    figures = decision.decide(inputs(**overrides))
    assert (figures.decision, figures.rule) == (expected, rule)


def test_thresholds_change_the_table():
    strict = Thresholds(continue_sales_above=D("25"), continue_views_above=D("20"), adaptive=True)
    moderate = inputs(current_sales=D("120"), current_views=D("115"))
    assert decision.decide(moderate).decision == "CONTINUE"
    assert decision.decide(moderate, strict).decision == "OPTIMIZE"


def test_adaptive_thresholds_are_bounded_and_need_history():
    assert decision.adaptive_thresholds([(D("50"), D("50"))] * 19) is decision.DEFAULT_THRESHOLDS
    learned = decision.adaptive_thresholds([(D("50"), D("50"))] * 20)
    assert learned.adaptive is True
    assert (learned.continue_sales_above, learned.continue_views_above) == (D("30.00"), D("20.00"))
    assert (learned.pause_sales_below, learned.pause_views_below) == (D("-5.00"), D("-3.00"))
    low = decision.adaptive_thresholds([(D(value), D(value)) for value in range(-40, 0, 2)])
    assert (low.continue_sales_above, low.pause_sales_below) == (D("10.00"), D("-20.00"))
    assert low.as_json()["continue_sales_above"] == "10.00"


def test_risk_score_weights_and_factors():
    score, factors = decision.risk(
        decision.RiskInputs(
            spend_to_date=D("500"),
            total_budget=D("1000"),
            window_spend=D("70"),
            window_daily_budget=D("70"),
            efficiency_score=D("-25"),
            cpc_current=D("1.5"),
            cpc_previous=D("1"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 1, 10),
            today=date(2026, 1, 2),
        )
    )
    assert factors == {
        "budget_burn": "0.5000",
        "performance_decline": "0.2500",
        "competition": "0.5000",
        "lifecycle": "0.2000",
    }
    # 0.3×0.5 + 0.4×0.25 + 0.2×0.5 + 0.1×0.2
    assert score == D("0.3700")


def test_risk_factors_are_clamped_and_default_when_unknown():
    score, factors = decision.risk(
        decision.RiskInputs(
            spend_to_date=D("0"),
            total_budget=None,
            window_spend=D("300"),
            window_daily_budget=D("100"),
            efficiency_score=D("40"),
            cpc_current=None,
            cpc_previous=None,
            start_date=date(2026, 1, 1),
            end_date=None,
            today=date(2026, 12, 1),
        )
    )
    assert factors == {
        "budget_burn": "1.0000",
        "performance_decline": "0.0000",
        "competition": "0.0000",
        "lifecycle": "1.0000",
    }
    assert score == D("0.4000")


@pytest.mark.parametrize(
    ("price", "roi", "budget"),
    [
        (D("100"), D("10"), D("15.00")),  # floor 15 < price × 0.6 = 60
        (D("100"), D("150"), D("45.00")),  # roi × 0.3 = 45
        (D("100"), D("300"), D("60.00")),  # capped by price × 0.6
        (D("20"), D("1"), D("12.00")),  # price × 0.6 = 12 under the floor
    ],
)
def test_proposal_budget_formula(price, roi, budget):
    assert decision.proposal_budget(price, roi) == budget


def test_expected_roi():
    assert decision.expected_roi(D("120"), D("30"), D("0.05")) == D("180.00")


EVALUATE = "/api/v1/campaigns/evaluate"
BODY = {
    "baseline_sales": "100",
    "current_sales": "115.01",
    "baseline_views": "100",
    "current_views": "110.01",
    "revenue": "300",
    "cost": "100",
    "new_customers": 4,
    "product_price": "50",
}


def test_evaluate_endpoint_returns_the_figures(tenant_world):
    response = tenant_world.api.post(EVALUATE, BODY, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "sales_impact": "15.010000",
        "view_impact": "10.010000",
        "roas": "2.000000",
        "cpa": "25.000000",
        "efficiency_score": "13.010000",
        "decision": "CONTINUE",
    }


def test_evaluate_endpoint_boundary_and_nulls(tenant_world):
    body = {**BODY, "current_sales": "90", "cost": "0", "revenue": "0", "new_customers": 0}
    response = tenant_world.api.post(EVALUATE, body, format="json")
    assert response.json()["roas"] is None
    assert response.json()["cpa"] is None
    assert (response.json()["sales_impact"], response.json()["decision"]) == ("-10.000000", "MONITOR")


def test_evaluate_endpoint_is_open_to_viewers_and_writes_nothing(tenant_world):
    from campaigns.models import CampaignEvaluation

    _, _, viewer = tenant_world.member("viewer")
    assert viewer.post(EVALUATE, BODY, format="json").status_code == 200
    assert CampaignEvaluation.objects.all_tenants().count() == 0


def test_evaluate_endpoint_refuses_bad_input(tenant_world):
    missing = tenant_world.api.post(EVALUATE, {"baseline_sales": "1"}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()["error"]["fields"]) == set(BODY) - {"baseline_sales"}
    negative = tenant_world.api.post(EVALUATE, {**BODY, "cost": "-1"}, format="json")
    assert (negative.status_code, list(negative.json()["error"]["fields"])) == (400, ["cost"])
    unknown = tenant_world.api.post(EVALUATE, {**BODY, "tenant": 3}, format="json")
    assert (unknown.status_code, list(unknown.json()["error"]["fields"])) == (400, ["tenant"])


def test_evaluate_endpoint_refuses_anonymous(db, client):
    response = client.post(EVALUATE, BODY, content_type="application/json")
    assert response.status_code == 401
