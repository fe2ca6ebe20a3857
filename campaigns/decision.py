"""The decision engine: pure functions in exact decimal arithmetic, no database.

Values on a boundary compare exactly (``Decimal("15")`` is not above 15), so the decision
table in docs/campaigns.md holds to the last digit. Percentages are computed with a 28-digit
context and stored with six decimals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class Thresholds:
    """The decision table's limits. ``DEFAULT`` is the issue's table, used by the API and
    by every tenant that has not opted in to adaptive thresholds."""

    pause_sales_below: Decimal = Decimal("-10")
    pause_views_below: Decimal = Decimal("-5")
    continue_sales_above: Decimal = Decimal("15")
    continue_views_above: Decimal = Decimal("10")
    optimize_sales_from: Decimal = Decimal("5")
    optimize_views_from: Decimal = Decimal("5")
    adaptive: bool = False

    def as_json(self) -> dict[str, Any]:
        return {key: (str(value) if isinstance(value, Decimal) else value) for key, value in asdict(self).items()}


DEFAULT_THRESHOLDS = Thresholds()

# Adaptive thresholds stay inside these bounds whatever the history says.
ADAPTIVE_BOUNDS = {
    "continue_sales_above": (Decimal("10"), Decimal("30")),
    "continue_views_above": (Decimal("7"), Decimal("20")),
    "pause_sales_below": (Decimal("-20"), Decimal("-5")),
    "pause_views_below": (Decimal("-10"), Decimal("-3")),
}
ADAPTIVE_MIN_HISTORY = 20


@dataclass(frozen=True)
class Inputs:
    baseline_sales: Decimal
    current_sales: Decimal
    baseline_views: Decimal
    current_views: Decimal
    revenue: Decimal
    cost: Decimal
    new_customers: int
    product_price: Decimal


@dataclass(frozen=True)
class Figures:
    sales_impact: Decimal
    view_impact: Decimal
    roas: Decimal | None
    cpa: Decimal | None
    efficiency_score: Decimal
    decision: str
    rule: str  # which line of the table matched (for the reason)


def impact(baseline: Decimal, current: Decimal) -> Decimal:
    """(current − baseline) / baseline × 100; with a zero baseline, 0 if current is 0, else 100."""
    if baseline == 0:
        return ZERO if current == 0 else HUNDRED
    with localcontext() as context:
        context.prec = 28
        return (current - baseline) / baseline * HUNDRED


def roas_of(revenue: Decimal, cost: Decimal) -> Decimal | None:
    if cost == 0:
        return None
    with localcontext() as context:
        context.prec = 28
        return (revenue - cost) / cost


def cpa_of(cost: Decimal, new_customers: int) -> Decimal | None:
    if not new_customers:
        return None
    with localcontext() as context:
        context.prec = 28
        return cost / Decimal(new_customers)


def decide(inputs: Inputs, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Figures:
    """The decision table; the first matching line wins."""
    sales_impact = impact(inputs.baseline_sales, inputs.current_sales)
    view_impact = impact(inputs.baseline_views, inputs.current_views)
    roas = roas_of(inputs.revenue, inputs.cost)
    cpa = cpa_of(inputs.cost, inputs.new_customers)
    with localcontext() as context:
        context.prec = 28
        efficiency = Decimal("0.6") * sales_impact + Decimal("0.4") * view_impact

    def figures(decision: str, rule: str) -> Figures:
        return Figures(sales_impact, view_impact, roas, cpa, efficiency, decision, rule)

    if roas is not None and roas < 0:
        return figures("EMERGENCY_PAUSE", "roas_negative")
    if cpa is not None and cpa > inputs.product_price:
        return figures("EMERGENCY_PAUSE", "cpa_above_price")
    if not inputs.new_customers and inputs.cost > inputs.product_price:
        return figures("EMERGENCY_PAUSE", "no_customers_cost_above_price")
    if sales_impact < thresholds.pause_sales_below:
        return figures("PAUSE", "sales_falling")
    if view_impact < thresholds.pause_views_below:
        return figures("PAUSE", "views_falling")
    if sales_impact > thresholds.continue_sales_above and view_impact > thresholds.continue_views_above:
        return figures("CONTINUE", "both_rising")
    if thresholds.optimize_sales_from <= sales_impact <= thresholds.continue_sales_above:
        return figures("OPTIMIZE", "sales_moderate")
    if thresholds.optimize_views_from <= view_impact <= thresholds.continue_views_above:
        return figures("OPTIMIZE", "views_moderate")
    return figures("MONITOR", "flat")


# --- risk ------------------------------------------------------------------------------------

RISK_WEIGHTS = {
    "budget_burn": Decimal("0.3"),
    "performance_decline": Decimal("0.4"),
    "competition": Decimal("0.2"),
    "lifecycle": Decimal("0.1"),
}
# A campaign with no end date is treated as reaching the end of its life after this many days.
OPEN_ENDED_LIFETIME_DAYS = 90


def clamp01(value: Decimal) -> Decimal:
    return max(ZERO, min(ONE, value))


@dataclass(frozen=True)
class RiskInputs:
    spend_to_date: Decimal
    total_budget: Decimal | None
    window_spend: Decimal
    window_daily_budget: Decimal  # daily budget × days of the window
    efficiency_score: Decimal
    cpc_current: Decimal | None
    cpc_previous: Decimal | None
    start_date: date
    end_date: date | None
    today: date


def risk(inputs: RiskInputs) -> tuple[Decimal, dict[str, str]]:
    """``risk_score`` in 0..1 and its four factors, each normalised to 0..1:

    - budget burn: the share of the total budget already spent; with no total budget, the
      window's spend over what its daily budgets allowed;
    - performance decline: −efficiency_score / 100 (an efficiency of −100 or worse is 1,
      any improvement is 0);
    - competition: how much dearer a click became, (CPC now − CPC in the previous window) /
      CPC in the previous window (ad auctions get dearer when rivals bid); 0 when unknown;
    - lifecycle stage: the share of the campaign's planned life already behind it (ads tire),
      an open-ended campaign counting 90 days.
    """
    with localcontext() as context:
        context.prec = 28
        if inputs.total_budget:
            burn = inputs.spend_to_date / inputs.total_budget
        elif inputs.window_daily_budget:
            burn = inputs.window_spend / inputs.window_daily_budget
        else:
            burn = ZERO
        decline = -inputs.efficiency_score / HUNDRED
        if inputs.cpc_current is not None and inputs.cpc_previous:
            competition = (inputs.cpc_current - inputs.cpc_previous) / inputs.cpc_previous
        else:
            competition = ZERO
        if inputs.end_date is not None:
            lifetime = max(1, (inputs.end_date - inputs.start_date).days + 1)
        else:
            lifetime = OPEN_ENDED_LIFETIME_DAYS
        elapsed = max(0, (inputs.today - inputs.start_date).days + 1)
        lifecycle = Decimal(elapsed) / Decimal(lifetime)
        factors = {
            "budget_burn": clamp01(burn),
            "performance_decline": clamp01(decline),
            "competition": clamp01(competition),
            "lifecycle": clamp01(lifecycle),
        }
        score = sum((RISK_WEIGHTS[name] * value for name, value in factors.items()), ZERO)
    quantum = Decimal("0.0001")
    return clamp01(score).quantize(quantum), {name: str(value.quantize(quantum)) for name, value in factors.items()}


# --- adaptive thresholds ---------------------------------------------------------------------


def _quantile(values: list[Decimal], q: Decimal) -> Decimal:
    ordered = sorted(values)
    index = int((Decimal(len(ordered) - 1) * q).to_integral_value())
    return ordered[index]


def adaptive_thresholds(history: list[tuple[Decimal, Decimal]]) -> Thresholds:
    """Thresholds learned from a tenant's own past (sales_impact, view_impact) pairs.

    CONTINUE needs the tenant's upper quartile of sales and view impact, PAUSE its lowest
    decile, each bounded by ``ADAPTIVE_BOUNDS``; the OPTIMIZE band keeps its lower end at 5.
    With fewer than 20 past evaluations the defaults apply (marked not adaptive).
    """
    if len(history) < ADAPTIVE_MIN_HISTORY:
        return DEFAULT_THRESHOLDS
    sales = [pair[0] for pair in history]
    views = [pair[1] for pair in history]

    def bounded(name: str, value: Decimal) -> Decimal:
        low, high = ADAPTIVE_BOUNDS[name]
        return max(low, min(high, value)).quantize(Decimal("0.01"))

    return Thresholds(
        pause_sales_below=bounded("pause_sales_below", _quantile(sales, Decimal("0.1"))),
        pause_views_below=bounded("pause_views_below", _quantile(views, Decimal("0.1"))),
        continue_sales_above=bounded("continue_sales_above", _quantile(sales, Decimal("0.75"))),
        continue_views_above=bounded("continue_views_above", _quantile(views, Decimal("0.75"))),
        adaptive=True,
    )


# --- proposals -------------------------------------------------------------------------------

BUDGET_PRICE_SHARE = Decimal("0.6")
BUDGET_FLOOR = Decimal("15")
BUDGET_ROI_SHARE = Decimal("0.3")


def expected_roi(price: Decimal, daily_views: Decimal, category_conversion: Decimal) -> Decimal:
    """The expected daily return of advertising a product: what it earns in a day if its
    views convert at its category's rate (price × average daily views × category units sold
    per view, over the last 30 days)."""
    return (price * daily_views * category_conversion).quantize(Decimal("0.01"))


def proposal_budget(price: Decimal, roi: Decimal) -> Decimal:
    """Daily budget = min(price × 0.6, max(15, expected ROI × 0.3))."""
    return min(price * BUDGET_PRICE_SHARE, max(BUDGET_FLOOR, roi * BUDGET_ROI_SHARE)).quantize(Decimal("0.01"))
