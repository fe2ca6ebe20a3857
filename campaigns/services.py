"""Writes and actions of the campaign autopilot. Tenant first; writes in transactions;
side effects (the companion message) after commit.

The loop (:func:`campaigns_tick`) for one tenant, per tick slot:

1. pick the tenant's live campaigns not yet evaluated in this slot;
2. fetch their metrics from each platform (one report call per platform, retried with
   backoff behind the circuit breaker) and upsert them; a platform that cannot be read is
   skipped this time (its campaigns stay unclaimed and are tried on the next tick);
3. claim the campaigns for the slot (``SELECT … FOR UPDATE SKIP LOCKED`` then a conditional
   ``UPDATE``): overlapping ticks or workers each get disjoint campaigns, and a campaign is
   evaluated at most once per slot (a unique constraint backs this up);
4. compute every figure in one SQL read, decide, plan the actions (pause, resume, move the
   budget freed by paused campaigns to the winners, within the tenant's total);
5. act through the adapters unless an emergency stop (the tenant's or the global one) is on;
6. write evaluations, status changes, notifications and staff tasks in one transaction, and
   send staff one companion message after commit.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from campaigns import decision, selectors
from campaigns.adapters import AdapterError, ResilientAdapter, adapter_for
from campaigns.adapters.base import MetricRecord
from campaigns.models import (
    AdCampaign,
    AutopilotGlobalSwitch,
    AutopilotSettings,
    CampaignDailyMetric,
    CampaignEvaluation,
    CampaignNotification,
    Decision,
    Platform,
)
from morvo.models import Tenant

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
CENT = Decimal("0.01")
METRIC_FIELDS = ("spend", "impressions", "clicks", "conversions", "revenue", "new_customers")
MAX_METRIC_ROWS = 1000


class CampaignError(ValueError):
    """Refused input or action; ``code`` is stable, the message is for people, ``field``
    names the input it is about (if any)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# --- settings and stops ----------------------------------------------------------------------


def autopilot_settings_get(tenant: Tenant) -> AutopilotSettings:
    row, _ = AutopilotSettings.objects.for_tenant(tenant).get_or_create(tenant=tenant)
    return row  # type: ignore[no-any-return]


def global_stop_active() -> bool:
    if settings.CAMPAIGNS_EMERGENCY_STOP:
        return True
    row = selectors.global_stop_row()
    return bool(row and row.emergency_stop)


def global_stop_set(active: bool, reason: str = "") -> AutopilotGlobalSwitch:
    with transaction.atomic():
        row, _ = AutopilotGlobalSwitch.objects.select_for_update().get_or_create(pk=1)
        row.emergency_stop = active
        row.reason = reason[:300]
        row.save()
    return row


def tenant_stop_set(tenant: Tenant, active: bool) -> AutopilotSettings:
    row = autopilot_settings_get(tenant)
    AutopilotSettings.objects.for_tenant(tenant).filter(pk=row.pk).update(emergency_stop=active)
    row.emergency_stop = active
    return row


def actions_stopped(tenant: Tenant, autopilot: AutopilotSettings | None = None) -> bool:
    autopilot = autopilot or autopilot_settings_get(tenant)
    return bool(autopilot.emergency_stop or not autopilot.enabled or global_stop_active())


def slot_start(now: datetime, tick_minutes: int) -> datetime:
    """The start of the tick slot ``now`` falls in (slots are aligned on the epoch, in UTC)."""
    seconds = max(60, int(tick_minutes) * 60)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


# --- campaigns -------------------------------------------------------------------------------

EDITABLE_FIELDS = (
    "product",
    "platform",
    "external_id",
    "name",
    "objective",
    "daily_budget",
    "total_budget",
    "currency",
    "start_date",
    "end_date",
    "creative_text",
    "targeting",
)


def _check_dates(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise CampaignError("invalid_dates", gettext("The end date is before the start date."), "end_date")


def campaign_create(tenant: Tenant, **fields: Any) -> AdCampaign:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise CampaignError("unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}")
    product = fields.get("product")
    if product is not None and product.tenant_id != tenant.pk:
        raise CampaignError("invalid_product", gettext("No such product."), "product")
    _check_dates(fields.get("start_date"), fields.get("end_date"))
    fields.setdefault("currency", tenant.currency)
    with transaction.atomic():
        return AdCampaign.objects.for_tenant(tenant).create(tenant=tenant, **fields)  # type: ignore[no-any-return]


def campaign_update(tenant: Tenant, campaign_id: int, **changes: Any) -> AdCampaign:
    """Change a campaign. A new daily budget of a launched campaign goes to its platform first
    (a staff task for the manual one); if the platform refuses, nothing changes."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise CampaignError("unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}")
    current = selectors.campaign_get(tenant, campaign_id)
    new_budget = changes.get("daily_budget")
    adapter = None
    if (
        new_budget is not None
        and new_budget != current.daily_budget
        and current.status not in (AdCampaign.Status.DRAFT, AdCampaign.Status.COMPLETED)
    ):
        adapter = adapter_for(tenant, current.platform, autopilot_settings_get(tenant))
        try:
            adapter.call("set_budget", current, new_budget)
        except AdapterError as error:
            adapter.close()
            raise CampaignError(
                "platform_error", gettext("The ad platform refused: %(error)s") % {"error": error}
            ) from error
    try:
        return _campaign_save(tenant, campaign_id, changes, adapter)
    finally:
        if adapter is not None:
            adapter.close()


def _campaign_save(tenant: Tenant, campaign_id: int, changes: dict[str, Any], adapter: Any) -> AdCampaign:
    with transaction.atomic():
        campaign = AdCampaign.objects.for_tenant(tenant).select_for_update().get(pk=campaign_id)
        product = changes.get("product")
        if product is not None and product.tenant_id != tenant.pk:
            raise CampaignError("invalid_product", gettext("No such product."), "product")
        for name, value in changes.items():
            setattr(campaign, name, value)
        _check_dates(campaign.start_date, campaign.end_date)
        campaign.save()
        if adapter is not None:
            adapter.flush()  # the manual adapter's staff task, with the change
    return campaign  # type: ignore[no-any-return]


def campaign_delete(tenant: Tenant, campaign_id: int) -> None:
    with transaction.atomic():
        campaign = AdCampaign.objects.for_tenant(tenant).select_for_update().get(pk=campaign_id)
        if campaign.status not in (AdCampaign.Status.DRAFT, AdCampaign.Status.COMPLETED):
            raise CampaignError(
                "campaign_live", gettext("Pause or complete the campaign before deleting it."), "status"
            )
        campaign.delete()


# --- metrics ---------------------------------------------------------------------------------


def _metric_record(raw: dict[str, Any]) -> MetricRecord:
    if not isinstance(raw, dict):
        raise CampaignError("invalid_metrics", gettext("Each metric row must be an object."), "metrics")
    try:
        day = raw["date"] if isinstance(raw["date"], date) else date.fromisoformat(str(raw["date"]))
        spend = Decimal(str(raw.get("spend", "0")))
        revenue = Decimal(str(raw.get("revenue", "0")))
        counts = {
            name: int(str(raw.get(name, 0))) for name in ("impressions", "clicks", "conversions", "new_customers")
        }
    except (KeyError, ValueError, TypeError, InvalidOperation):
        raise CampaignError(
            "invalid_metrics", gettext("Metric row %(row)s is not valid.") % {"row": repr(raw)[:200]}, "metrics"
        ) from None
    if not (spend.is_finite() and revenue.is_finite()) or spend < 0 or revenue < 0 or min(counts.values()) < 0:
        raise CampaignError("invalid_metrics", gettext("Metrics cannot be negative."), "metrics")
    if spend.as_tuple().exponent < -2 or revenue.as_tuple().exponent < -2 or max(spend, revenue) >= 10**10:  # type: ignore[operator]
        raise CampaignError("invalid_metrics", gettext("Money takes at most two decimals."), "metrics")
    return MetricRecord(date=day, spend=spend, revenue=revenue, **counts)


METRICS_UPSERT_SQL = """
INSERT INTO {table} (tenant_id, campaign_id, date, spend, impressions, clicks, conversions, revenue, new_customers)
SELECT %(tenant)s, row.* FROM unnest(
    %(campaign)s::bigint[], %(date)s::date[], %(spend)s::numeric[], %(impressions)s::integer[],
    %(clicks)s::integer[], %(conversions)s::integer[], %(revenue)s::numeric[], %(new_customers)s::integer[]
) AS row
ON CONFLICT (campaign_id, date) DO UPDATE SET
    spend = EXCLUDED.spend, impressions = EXCLUDED.impressions, clicks = EXCLUDED.clicks,
    conversions = EXCLUDED.conversions, revenue = EXCLUDED.revenue, new_customers = EXCLUDED.new_customers
WHERE {table}.tenant_id = %(tenant)s
"""


def _metrics_write(tenant: Tenant, rows: list[tuple[int, MetricRecord]]) -> None:
    """One upsert statement for any number of (campaign id, record) pairs (a day sent again
    replaces its figures). Every campaign must be ``tenant``'s: callers pass campaigns loaded
    through the tenant's queryset; the conflict update is limited to the tenant's rows."""
    if not rows:
        return
    columns: dict[str, Any] = {
        "tenant": tenant.pk,
        "campaign": [campaign_id for campaign_id, _ in rows],
        **{name: [getattr(record, name) for _, record in rows] for name in ("date", *METRIC_FIELDS)},
    }
    with connection.cursor() as cursor:
        cursor.execute(METRICS_UPSERT_SQL.format(table=CampaignDailyMetric._meta.db_table), columns)


CAMPAIGNS_UPDATE_SQL = """
UPDATE {table} AS campaign
SET last_decision = changed.last_decision,
    status = COALESCE(changed.status, campaign.status),
    paused_by = COALESCE(changed.paused_by, campaign.paused_by),
    daily_budget = COALESCE(changed.daily_budget, campaign.daily_budget),
    updated_at = %(now)s
FROM unnest(%(id)s::bigint[], %(last_decision)s::varchar[], %(status)s::varchar[], %(paused_by)s::varchar[],
            %(daily_budget)s::numeric[]) AS changed(id, last_decision, status, paused_by, daily_budget)
WHERE campaign.id = changed.id AND campaign.tenant_id = %(tenant)s
"""


def _campaigns_write(tenant: Tenant, items: list[Computed]) -> None:
    """The loop's changes to many campaigns in one statement (bulk_update's CASE per field
    costs more in Python than the whole evaluation). Only what the loop changed is written
    (NULL keeps the row's value), so a person's change made meanwhile is not overwritten."""
    if not items:
        return
    paused_by: dict[str | None, str | None] = {
        None: None,
        AdCampaign.Status.ACTIVE: AdCampaign.PausedBy.NOBODY,
        AdCampaign.Status.PAUSED: AdCampaign.PausedBy.AUTOPILOT,
        AdCampaign.Status.EMERGENCY_PAUSED: AdCampaign.PausedBy.AUTOPILOT,
    }
    values: dict[str, Any] = {
        "tenant": tenant.pk,
        "now": timezone.now(),
        "id": [item.campaign.pk for item in items],
        "last_decision": [item.figures.decision for item in items],
        "status": [item.new_status for item in items],
        "paused_by": [paused_by[item.new_status] for item in items],
        "daily_budget": [item.new_budget for item in items],
    }
    with connection.cursor() as cursor:
        cursor.execute(CAMPAIGNS_UPDATE_SQL.format(table=AdCampaign._meta.db_table), values)
    for item in items:  # the objects the caller holds follow the rows
        campaign = item.campaign
        campaign.last_decision = item.figures.decision
        if item.new_status is not None:
            campaign.status, campaign.paused_by = item.new_status, paused_by[item.new_status] or ""
        if item.new_budget is not None:
            campaign.daily_budget = item.new_budget


def campaign_metrics_upsert(tenant: Tenant, campaign: AdCampaign, raw_rows: Any) -> int:
    """Daily metrics of one campaign (a day sent again replaces the earlier figures). All or
    nothing: one bad row refuses the whole batch."""
    if not isinstance(raw_rows, list) or not raw_rows:
        raise CampaignError("invalid_metrics", gettext("Send a non-empty list of daily metrics."), "metrics")
    if len(raw_rows) > MAX_METRIC_ROWS:
        raise CampaignError(
            "too_many_rows", gettext("At most %(count)d rows at once.") % {"count": MAX_METRIC_ROWS}, "metrics"
        )
    records = [_metric_record(raw) for raw in raw_rows]
    days = [record.date for record in records]
    if len(set(days)) != len(days):
        raise CampaignError("duplicate_dates", gettext("A date appears twice."), "metrics")
    if max(days) > timezone.localdate() + timedelta(days=1):
        raise CampaignError("future_date", gettext("Metrics cannot be in the future."), "metrics")
    with transaction.atomic():
        _metrics_write(tenant, [(campaign.pk, record) for record in records])
    return len(records)


CSV_COLUMNS = ("date", *METRIC_FIELDS)


def campaign_metrics_import_csv(tenant: Tenant, campaign: AdCampaign, text: str) -> int:
    """CSV with a header row naming ``date`` and any of the metric columns."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if "date" not in header:
        raise CampaignError("invalid_csv", gettext("The CSV needs a header row with a date column."), "file")
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown:
        raise CampaignError(
            "invalid_csv", gettext("Unknown CSV columns: %(columns)s") % {"columns": ", ".join(unknown)}, "file"
        )
    reader.fieldnames = header
    try:
        rows = [{key: value.strip() for key, value in row.items() if key and value} for row in reader]
    except (csv.Error, AttributeError):
        raise CampaignError("invalid_csv", gettext("The CSV cannot be read."), "file") from None
    return campaign_metrics_upsert(tenant, campaign, rows)


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class Computed:
    campaign: AdCampaign
    window: selectors.WindowFigures
    figures: decision.Figures
    risk_score: Decimal
    risk_factors: dict[str, str]
    thresholds: decision.Thresholds
    action: str = CampaignEvaluation.Action.NONE
    detail: dict[str, Any] = field(default_factory=dict)
    new_status: str | None = None
    new_budget: Decimal | None = None


def thresholds_for(tenant: Tenant, autopilot: AutopilotSettings) -> decision.Thresholds:
    if not autopilot.adaptive_thresholds:
        return decision.DEFAULT_THRESHOLDS
    return decision.adaptive_thresholds(selectors.evaluation_history(tenant))


def _compute(
    campaigns: list[AdCampaign], windows: dict[int, selectors.WindowFigures], today: date, thresholds: Any
) -> list[Computed]:
    computed = []
    for campaign in campaigns:
        window = windows.get(campaign.pk)
        if window is None:
            continue
        price = campaign.product.price if campaign.product_id else ZERO  # type: ignore[union-attr]
        figures = decision.decide(
            decision.Inputs(
                baseline_sales=window.baseline_sales,
                current_sales=window.current_sales,
                baseline_views=window.baseline_views,
                current_views=window.current_views,
                revenue=window.revenue,
                cost=window.cost,
                new_customers=window.new_customers,
                product_price=price,
            ),
            thresholds,
        )
        days = (window.window_end - window.window_start).days + 1
        score, factors = decision.risk(
            decision.RiskInputs(
                spend_to_date=window.spend_to_date,
                total_budget=campaign.total_budget,
                window_spend=window.cost,
                window_daily_budget=campaign.daily_budget * days,
                efficiency_score=figures.efficiency_score,
                cpc_current=(window.cost / window.clicks) if window.clicks else None,
                cpc_previous=(window.previous_cost / window.previous_clicks) if window.previous_clicks else None,
                start_date=campaign.start_date,
                end_date=campaign.end_date,
                today=today,
            )
        )
        computed.append(Computed(campaign, window, figures, score, factors, thresholds))
    return computed


def _two_decimals(value: Decimal | None) -> str:
    return "—" if value is None else str(value.quantize(CENT))


# Marked for translation here, translated when used (one lookup per reason).
REASONS = {
    "roas_negative": gettext_noop("ROAS is %(roas)s: the campaign costs more than it brings in."),
    "cpa_above_price": gettext_noop("Each new customer costs %(cpa)s, more than the product's price (%(price)s)."),
    "no_customers_cost_above_price": gettext_noop(
        "No new customers while the spend (%(cost)s) is above the product's price (%(price)s)."
    ),
    "sales_falling": gettext_noop("Sales changed by %(sales)s%%, below the %(sales_limit)s%% limit."),
    "views_falling": gettext_noop("Views changed by %(views)s%%, below the %(views_limit)s%% limit."),
    "both_rising": gettext_noop(
        "Sales rose %(sales)s%% and views %(views)s%%, above the %(sales_target)s%% and %(views_target)s%% targets."
    ),
    "sales_moderate": gettext_noop("Sales changed by %(sales)s%%: a moderate gain worth optimising."),
    "views_moderate": gettext_noop("Views changed by %(views)s%%: a moderate gain worth optimising."),
    "flat": gettext_noop("Sales changed by %(sales)s%% and views by %(views)s%%: no clear signal yet."),
}


def _reason(item: Computed) -> str:
    """The reason in the active language."""
    figures, limits, window = item.figures, item.thresholds, item.window
    price = item.campaign.product.price if item.campaign.product_id else ZERO  # type: ignore[union-attr]
    values = {
        "roas": _two_decimals(figures.roas),
        "cpa": _two_decimals(figures.cpa),
        "cost": _two_decimals(window.cost),
        "price": _two_decimals(price),
        "sales": _two_decimals(figures.sales_impact),
        "views": _two_decimals(figures.view_impact),
        "sales_limit": str(limits.pause_sales_below),
        "views_limit": str(limits.pause_views_below),
        "sales_target": str(limits.continue_sales_above),
        "views_target": str(limits.continue_views_above),
    }
    return gettext(REASONS[figures.rule]) % values


def _reasons(item: Computed) -> tuple[str, str]:
    with translation.override("ar"):
        arabic = _reason(item)
    with translation.override("en"):
        english = _reason(item)
    return arabic, english


def _plan(items: list[Computed], autopilot: AutopilotSettings) -> None:
    """Decide each campaign's action; the budget freed by paused campaigns goes to the
    winners (CONTINUE, best efficiency first), each growing by at most ``max_budget_step``
    of its budget: the tenant's total daily budget never grows."""
    freed = ZERO
    winners = []
    for item in items:
        status = item.campaign.status
        verdict = item.figures.decision
        if status == AdCampaign.Status.ACTIVE and verdict == Decision.EMERGENCY_PAUSE:
            item.action, item.new_status = (
                CampaignEvaluation.Action.EMERGENCY_PAUSED,
                AdCampaign.Status.EMERGENCY_PAUSED,
            )
            freed += item.campaign.daily_budget
        elif status == AdCampaign.Status.ACTIVE and verdict == Decision.PAUSE:
            item.action, item.new_status = CampaignEvaluation.Action.PAUSED, AdCampaign.Status.PAUSED
            freed += item.campaign.daily_budget
        elif (
            status == AdCampaign.Status.PAUSED
            and item.campaign.paused_by == AdCampaign.PausedBy.AUTOPILOT
            and verdict == Decision.CONTINUE
        ):
            item.action, item.new_status = CampaignEvaluation.Action.RESUMED, AdCampaign.Status.ACTIVE
        elif status == AdCampaign.Status.ACTIVE and verdict == Decision.CONTINUE:
            winners.append(item)
    winners.sort(key=lambda item: (-item.figures.efficiency_score, item.campaign.pk))
    for item in winners:
        if freed < CENT:
            break
        room = (item.campaign.daily_budget * autopilot.max_budget_step).quantize(CENT)
        raise_by = min(room, freed).quantize(CENT)
        if raise_by < CENT:
            continue
        freed -= raise_by
        item.action = CampaignEvaluation.Action.BUDGET_CHANGED
        item.new_budget = item.campaign.daily_budget + raise_by
        item.detail = {"old_budget": str(item.campaign.daily_budget), "new_budget": str(item.new_budget)}


ADAPTER_METHOD = {
    CampaignEvaluation.Action.PAUSED: "pause",
    CampaignEvaluation.Action.EMERGENCY_PAUSED: "pause",
    CampaignEvaluation.Action.RESUMED: "resume",
    CampaignEvaluation.Action.BUDGET_CHANGED: "set_budget",
}


def _act(items: list[Computed], adapters: dict[str, ResilientAdapter]) -> None:
    """Carry out the planned actions on each platform (in parallel where the adapter allows);
    a refused or failed call leaves the campaign as it was and is logged as FAILED."""
    by_platform: dict[str, list[Computed]] = defaultdict(list)
    for item in items:
        if item.action in ADAPTER_METHOD:
            by_platform[item.campaign.platform].append(item)
    for platform, group in by_platform.items():
        calls = []
        for item in group:
            method = ADAPTER_METHOD[item.action]  # type: ignore[index]
            args = (item.campaign, item.new_budget) if method == "set_budget" else (item.campaign,)
            calls.append((method, args))
        for item, answer in zip(group, adapters[platform].call_many(calls), strict=True):
            if isinstance(answer, AdapterError):
                item.detail = {**item.detail, "wanted": item.action, "error": str(answer)[:500]}
                item.action, item.new_status, item.new_budget = CampaignEvaluation.Action.FAILED, None, None


def _stop(items: list[Computed]) -> None:
    for item in items:
        if item.action != CampaignEvaluation.Action.NONE:
            item.detail = {**item.detail, "wanted": item.action}
            item.action, item.new_status, item.new_budget = CampaignEvaluation.Action.STOPPED, None, None


def _evaluation_row(
    tenant: Tenant, item: Computed, slot: datetime | None, actor_user: Any = None
) -> CampaignEvaluation:
    figures, window = item.figures, item.window
    reason_ar, reason_en = _reasons(item)
    price = item.campaign.product.price if item.campaign.product_id else ZERO  # type: ignore[union-attr]
    return CampaignEvaluation(
        tenant=tenant,
        campaign=item.campaign,
        slot=slot,
        window_start=window.window_start,
        window_end=window.window_end,
        baseline_start=window.baseline_start,
        baseline_end=window.baseline_end,
        baseline_sales=window.baseline_sales,
        current_sales=window.current_sales,
        baseline_views=window.baseline_views,
        current_views=window.current_views,
        revenue=window.revenue,
        cost=window.cost,
        new_customers=window.new_customers,
        product_price=price,
        sales_impact=figures.sales_impact.quantize(Decimal("0.000001")),
        view_impact=figures.view_impact.quantize(Decimal("0.000001")),
        roas=figures.roas.quantize(Decimal("0.000001")) if figures.roas is not None else None,
        cpa=figures.cpa.quantize(Decimal("0.000001")) if figures.cpa is not None else None,
        efficiency_score=figures.efficiency_score.quantize(Decimal("0.000001")),
        risk_score=item.risk_score,
        risk_factors=item.risk_factors,
        decision=figures.decision,
        reason_ar=reason_ar,
        reason_en=reason_en,
        thresholds=item.thresholds.as_json(),
        action_taken=item.action,
        action_detail=item.detail,
        actor=CampaignEvaluation.Actor.PERSON if actor_user is not None else CampaignEvaluation.Actor.AUTOPILOT,
        actor_user=actor_user,
    )


ACTION_LEVEL = {
    CampaignEvaluation.Action.EMERGENCY_PAUSED: CampaignNotification.Level.CRITICAL,
    CampaignEvaluation.Action.PAUSED: CampaignNotification.Level.WARNING,
    CampaignEvaluation.Action.FAILED: CampaignNotification.Level.WARNING,
    CampaignEvaluation.Action.STOPPED: CampaignNotification.Level.WARNING,
    CampaignEvaluation.Action.RESUMED: CampaignNotification.Level.INFO,
    CampaignEvaluation.Action.BUDGET_CHANGED: CampaignNotification.Level.INFO,
}


ACTION_SENTENCES: dict[str, str] = {
    CampaignEvaluation.Action.EMERGENCY_PAUSED: gettext_noop("Campaign “%(name)s” was stopped at once."),
    CampaignEvaluation.Action.PAUSED: gettext_noop("Campaign “%(name)s” was paused."),
    CampaignEvaluation.Action.RESUMED: gettext_noop("Campaign “%(name)s” was resumed."),
    CampaignEvaluation.Action.BUDGET_CHANGED: gettext_noop(
        "Campaign “%(name)s” now has a daily budget of %(budget)s (was %(old)s)."
    ),
    CampaignEvaluation.Action.FAILED: gettext_noop("The platform refused the change to campaign “%(name)s”."),
    CampaignEvaluation.Action.STOPPED: gettext_noop(
        "Campaign “%(name)s” needs a change, but the emergency stop is on: nothing was done."
    ),
}


def _action_sentence(item: Computed) -> str:
    name = item.campaign.name
    return gettext(ACTION_SENTENCES[item.action]) % {
        "name": name,
        "budget": item.detail.get("new_budget", ""),
        "old": item.detail.get("old_budget", ""),
    }


def _notification(tenant: Tenant, item: Computed, evaluation: CampaignEvaluation) -> CampaignNotification:
    with translation.override("ar"):
        arabic = f"{_action_sentence(item)} {evaluation.reason_ar}"
    with translation.override("en"):
        english = f"{_action_sentence(item)} {evaluation.reason_en}"
    return CampaignNotification(
        tenant=tenant,
        campaign=item.campaign,
        evaluation=evaluation,
        level=ACTION_LEVEL[item.action],  # type: ignore[index]
        message_ar=arabic,
        message_en=english,
    )


def _companion_tell(tenant: Tenant, items: list[Computed], slot: datetime | None) -> None:
    """One companion message for the tick, in the tenant's language, after commit."""
    acted = [item for item in items if item.action != CampaignEvaluation.Action.NONE]
    if not acted:
        return
    with translation.override(tenant.default_language or "ar"):
        lines = [
            gettext("The autopilot evaluated %(count)d campaign(s):") % {"count": len(items)},
            *(f"• {_action_sentence(item)}" for item in acted),
        ]
    content = "\n".join(lines)
    metadata = {
        "kind": "campaign_autopilot",
        "idempotency_key": f"campaigns:{tenant.pk}:{slot.isoformat()}" if slot else None,
        "slot": slot.isoformat() if slot else None,
        "actions": {str(item.campaign.pk): item.action for item in acted},
    }

    def send() -> None:
        try:
            from conversations.services import companion_notify

            companion_notify(tenant, content, metadata)
        except Exception:  # the loop's work is saved; a missed notice must not undo it
            logger.exception("campaigns: the companion notice for tenant %s failed", tenant.pk)

    transaction.on_commit(send)


@dataclass
class TickReport:
    slot: datetime | None = None
    candidates: int = 0
    evaluated: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    skipped_platforms: list[str] = field(default_factory=list)
    stopped: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot.isoformat() if self.slot else None,
            "candidates": self.candidates,
            "evaluated": self.evaluated,
            "actions": self.actions,
            "skipped_platforms": self.skipped_platforms,
            "stopped": self.stopped,
        }


def tenant_today(tenant: Tenant, now: datetime) -> date:
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(tenant.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return now.astimezone(zone).date()


def _fetch_metrics(
    tenant: Tenant, campaigns: list[AdCampaign], adapter: ResilientAdapter, today: date, window_days: int
) -> None:
    # The current window and the day before it (late corrections); earlier days were stored
    # by earlier ticks or arrived through the API.
    start = today - timedelta(days=window_days)
    found = adapter.call("fetch_metrics", campaigns, start, today)
    own = {campaign.pk for campaign in campaigns}
    rows = [(campaign_id, record) for campaign_id, records in found.items() if campaign_id in own for record in records]
    with transaction.atomic():
        _metrics_write(tenant, rows)


def campaigns_tick(tenant: Tenant, now: datetime | None = None) -> TickReport:
    """One tick of the loop for one tenant (see the module docstring). Safe to run twice
    and concurrently: the second run finds nothing left to claim in the slot."""
    now = now or timezone.now()
    autopilot = autopilot_settings_get(tenant)
    slot = slot_start(now, autopilot.tick_minutes)
    today = tenant_today(tenant, now)
    report = TickReport(slot=slot)
    due = Q(evaluated_slot__isnull=True) | Q(evaluated_slot__lt=slot)
    live = Q(status=AdCampaign.Status.ACTIVE) | Q(
        status=AdCampaign.Status.PAUSED, paused_by=AdCampaign.PausedBy.AUTOPILOT
    )
    pending = list(
        AdCampaign.objects.for_tenant(tenant)
        .filter(live, due, product__isnull=False, start_date__lte=today)
        .select_related("product")
        .order_by("id")
    )
    report.candidates = len(pending)
    if not pending:
        return report

    adapters: dict[str, ResilientAdapter] = {}
    try:
        by_platform: dict[str, list[AdCampaign]] = defaultdict(list)
        for campaign in pending:
            by_platform[campaign.platform].append(campaign)
        readable = []
        for platform, group in by_platform.items():
            adapter = adapters[platform] = adapter_for(tenant, platform, autopilot)
            try:
                _fetch_metrics(tenant, group, adapter, today, autopilot.window_days)
            except AdapterError as error:
                logger.warning("campaigns: tenant %s cannot read %s: %s", tenant.pk, platform, error)
                report.skipped_platforms.append(platform)
                continue
            readable.extend(group)
        if not readable:
            return report

        with transaction.atomic():
            claimed_ids = list(
                AdCampaign.objects.for_tenant(tenant)
                .filter(due, live, pk__in=[campaign.pk for campaign in readable])
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
            if claimed_ids:
                AdCampaign.objects.for_tenant(tenant).filter(pk__in=claimed_ids).update(evaluated_slot=slot)
        claimed = [campaign for campaign in readable if campaign.pk in set(claimed_ids)]
        if not claimed:
            return report

        windows = selectors.window_figures(tenant, claimed_ids, today, autopilot.window_days)
        items = _compute(claimed, windows, today, thresholds_for(tenant, autopilot))
        _plan(items, autopilot)
        report.stopped = actions_stopped(tenant, autopilot)
        if report.stopped:
            _stop(items)
        else:
            _act(items, adapters)
        _record(tenant, items, slot, list(adapters.values()))
        report.evaluated = len(items)
        for item in items:
            report.actions[item.action] = report.actions.get(item.action, 0) + 1
        return report
    finally:
        for adapter in adapters.values():
            adapter.close()


def _record(
    tenant: Tenant,
    items: list[Computed],
    slot: datetime | None,
    adapters: list[ResilientAdapter],
    actor_user: Any = None,
) -> None:
    """Evaluations, campaign changes, notifications and staff tasks in one transaction."""
    with transaction.atomic():
        evaluations = [_evaluation_row(tenant, item, slot, actor_user) for item in items]
        CampaignEvaluation.objects.for_tenant(tenant).bulk_create(evaluations, batch_size=1000)
        _campaigns_write(tenant, items)
        notifications = [
            _notification(tenant, item, evaluation)
            for item, evaluation in zip(items, evaluations, strict=True)
            if item.action != CampaignEvaluation.Action.NONE
        ]
        CampaignNotification.objects.for_tenant(tenant).bulk_create(notifications, batch_size=1000)
        for adapter in adapters:
            adapter.flush()  # the manual adapter's staff tasks
        _companion_tell(tenant, items, slot)


def campaign_evaluate_now(tenant: Tenant, campaign_id: int, user: Any) -> CampaignEvaluation:
    """A person asks for an evaluation now: the same figures, decision and actions as the
    loop, logged with that person as the actor (outside the loop's slots)."""
    autopilot = autopilot_settings_get(tenant)
    campaign = selectors.campaign_get(tenant, campaign_id)
    if campaign.product_id is None:
        raise CampaignError("no_product", gettext("The campaign advertises no product."), "product")
    if campaign.status not in (AdCampaign.Status.ACTIVE, AdCampaign.Status.PAUSED):
        raise CampaignError("not_live", gettext("Only active or paused campaigns are evaluated."), "status")
    now = timezone.now()
    today = tenant_today(tenant, now)
    if campaign.start_date > today:
        raise CampaignError("not_started", gettext("The campaign has not started yet."), "start_date")
    windows = selectors.window_figures(tenant, [campaign.pk], today, autopilot.window_days)
    items = _compute([campaign], windows, today, thresholds_for(tenant, autopilot))
    if not items:
        raise CampaignError("no_product", gettext("The campaign advertises no product."), "product")
    _plan(items, autopilot)
    adapter = adapter_for(tenant, campaign.platform, autopilot)
    try:
        if actions_stopped(tenant, autopilot):
            _stop(items)
        else:
            _act(items, {campaign.platform: adapter})
        _record(tenant, items, None, [adapter], actor_user=user)
    finally:
        adapter.close()
    return selectors.evaluation_list(tenant, campaign).order_by("-id").first()  # type: ignore[return-value]


# --- a person's actions ----------------------------------------------------------------------


def _person_change(
    tenant: Tenant, campaign_id: int, allowed: tuple[str, ...], method: str, new_status: str
) -> AdCampaign:
    autopilot = autopilot_settings_get(tenant)
    campaign = selectors.campaign_get(tenant, campaign_id)
    if campaign.status not in allowed:
        raise CampaignError(
            "invalid_status",
            gettext("This cannot be done to a campaign that is %(status)s.")
            % {"status": campaign.get_status_display()},
            "status",
        )
    adapter = adapter_for(tenant, campaign.platform, autopilot)
    try:
        external_id = adapter.call(method, campaign)
        with transaction.atomic():
            locked = AdCampaign.objects.for_tenant(tenant).select_for_update().get(pk=campaign.pk)
            if locked.status not in allowed:
                raise CampaignError("invalid_status", gettext("The campaign changed meanwhile."), "status")
            locked.status = new_status
            if method == "create" and external_id:
                locked.external_id = external_id
            locked.paused_by = AdCampaign.PausedBy.PERSON if new_status == AdCampaign.Status.PAUSED else ""
            locked.save(update_fields=["status", "paused_by", "external_id", "updated_at"])
            adapter.flush()
    except AdapterError as error:
        raise CampaignError(
            "platform_error", gettext("The ad platform refused: %(error)s") % {"error": error}
        ) from error
    finally:
        adapter.close()
    return locked  # type: ignore[no-any-return]


def campaign_launch(tenant: Tenant, campaign_id: int) -> AdCampaign:
    """Approve a draft: create it on its platform (a staff task for the manual one) and make it active."""
    return _person_change(tenant, campaign_id, (AdCampaign.Status.DRAFT,), "create", AdCampaign.Status.ACTIVE)


def campaign_pause(tenant: Tenant, campaign_id: int) -> AdCampaign:
    return _person_change(tenant, campaign_id, (AdCampaign.Status.ACTIVE,), "pause", AdCampaign.Status.PAUSED)


def campaign_resume(tenant: Tenant, campaign_id: int) -> AdCampaign:
    return _person_change(
        tenant,
        campaign_id,
        (AdCampaign.Status.PAUSED, AdCampaign.Status.EMERGENCY_PAUSED),
        "resume",
        AdCampaign.Status.ACTIVE,
    )


def notification_mark_read(tenant: Tenant, ids: list[int]) -> int:
    return int(
        selectors.notification_list(tenant).filter(pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())
    )


# --- proposals -------------------------------------------------------------------------------


def campaigns_propose(tenant: Tenant, limit: int | None = None, today: date | None = None) -> list[AdCampaign]:
    """Drafts for the products most worth advertising, with ad copy from the content
    specialist; launched at once when the tenant turned auto-launch on (and no stop is on)."""
    autopilot = autopilot_settings_get(tenant)
    today = today or tenant_today(tenant, timezone.now())
    limit = autopilot.proposals_per_day if limit is None else limit
    candidates = selectors.proposal_candidates(tenant, today, autopilot)
    ranked = []
    for candidate in candidates:
        product = candidate.product
        daily_views = Decimal(candidate.views_30d) / Decimal(30)
        roi = decision.expected_roi(product.price, daily_views, candidate.category_conversion)
        expected_units = daily_views * candidate.category_conversion * 30
        potential = product.price * min(Decimal(product.stock_quantity), expected_units)
        ranked.append((potential, roi, candidate))
    ranked.sort(key=lambda entry: (-entry[0], entry[2].product.pk))
    platform = Platform.IMPACT if autopilot.impact_base_url and autopilot.impact_account_sid else Platform.MANUAL
    created = []
    for _potential, roi, candidate in ranked[:limit]:
        product = candidate.product
        try:
            from agents_app.services import ad_copy_write

            copy = ad_copy_write(tenant, product, language=tenant.default_language or "ar")
        except Exception:
            logger.exception("campaigns: no ad copy for product %s of tenant %s", product.pk, tenant.pk)
            continue
        copy = copy if isinstance(copy, dict) else {}
        creative = "\n".join(str(copy.get(key, "")) for key in ("headline", "body", "call_to_action") if copy.get(key))
        campaign = campaign_create(
            tenant,
            product=product,
            platform=platform,
            name=(product.name_ar if tenant.default_language != "en" else product.name_en or product.name_ar)[:200],
            daily_budget=decision.proposal_budget(product.price, roi),
            start_date=today,
            creative_text=creative,
        )
        AdCampaign.objects.for_tenant(tenant).filter(pk=campaign.pk).update(
            ad_copy=copy, proposed_by_autopilot=True, expected_roi=roi
        )
        campaign.ad_copy, campaign.proposed_by_autopilot, campaign.expected_roi = copy, True, roi
        if autopilot.auto_launch and not actions_stopped(tenant, autopilot):
            try:
                campaign = campaign_launch(tenant, campaign.pk)
            except CampaignError:
                logger.warning("campaigns: auto-launch of %s failed", campaign.pk)
        created.append(campaign)
    return created


def campaigns_propose_daily(tenant: Tenant) -> list[AdCampaign]:
    """The loop's daily proposals, at most once a day whatever overlaps (a conditional update claims the day)."""
    autopilot = autopilot_settings_get(tenant)
    if not autopilot.auto_propose or actions_stopped(tenant, autopilot):
        return []
    today = tenant_today(tenant, timezone.now())
    claimed = (
        AutopilotSettings.objects.for_tenant(tenant)
        .filter(Q(last_proposed_on__isnull=True) | Q(last_proposed_on__lt=today), pk=autopilot.pk)
        .update(last_proposed_on=today)
    )
    return campaigns_propose(tenant, today=today) if claimed else []


# --- the demo --------------------------------------------------------------------------------

DEMO_CAMPAIGNS = (
    # (external id, objective, daily budget, trend of revenue per spend, new customers a day)
    ("demo-winner", AdCampaign.Objective.SALES, Decimal("60.00"), Decimal("3.2"), 3),
    ("demo-steady", AdCampaign.Objective.CONVERSIONS, Decimal("40.00"), Decimal("1.6"), 1),
    ("demo-loser", AdCampaign.Objective.TRAFFIC, Decimal("35.00"), Decimal("0.6"), 0),
)
DEMO_DAYS = 35


def campaigns_seed_demo(tenant: Tenant, today: date | None = None) -> list[AdCampaign]:
    """Three campaigns with 35 days of metrics and weekly evaluations for the demo tenant.
    Idempotent: a campaign that exists (by external id) is left as it is."""
    today = today or tenant_today(tenant, timezone.now())
    products = list(selectors.products_active(tenant).order_by("-price", "id")[: len(DEMO_CAMPAIGNS)])
    existing = {
        campaign.external_id: campaign
        for campaign in AdCampaign.objects.for_tenant(tenant).filter(
            external_id__in=[spec[0] for spec in DEMO_CAMPAIGNS]
        )
    }
    seeded = []
    start = today - timedelta(days=DEMO_DAYS - 1)
    for index, (spec, product) in enumerate(zip(DEMO_CAMPAIGNS, products, strict=False)):
        external_id, objective, budget, return_rate, customers = spec
        if external_id in existing:
            seeded.append(existing[external_id])
            continue
        with transaction.atomic():
            campaign = AdCampaign.objects.for_tenant(tenant).create(
                tenant=tenant,
                product=product,
                platform=Platform.MANUAL,
                external_id=external_id,
                name=f"{product.name_ar} — {AdCampaign.Objective(objective).label}",
                objective=objective,
                status=AdCampaign.Status.ACTIVE,
                daily_budget=budget,
                total_budget=budget * 60,
                currency=tenant.currency,
                start_date=start,
                creative_text=product.description[:500],
            )
            rows = []
            for offset in range(DEMO_DAYS):
                day = start + timedelta(days=offset)
                wobble = Decimal((offset * 7 + index * 3) % 11 - 5) / Decimal(100)
                spend = (budget * (Decimal("0.9") + wobble)).quantize(CENT)
                drift = Decimal(offset) / Decimal(DEMO_DAYS) * (return_rate - 1) / 4
                revenue = (spend * (return_rate + drift + wobble)).quantize(CENT)
                clicks = int(spend * 3)
                rows.append(
                    CampaignDailyMetric(
                        tenant=tenant,
                        campaign=campaign,
                        date=day,
                        spend=spend,
                        impressions=clicks * 40,
                        clicks=clicks,
                        conversions=customers + (offset % 3 if customers else 0),
                        revenue=revenue,
                        new_customers=customers + (offset % 2 if customers else 0),
                    )
                )
            CampaignDailyMetric.objects.for_tenant(tenant).bulk_create(rows)
            history = []
            for weeks_ago in (4, 3, 2, 1, 0):
                day = today - timedelta(days=7 * weeks_ago)
                windows = selectors.window_figures(tenant, [campaign.pk], day, 7)
                for item in _compute([campaign], windows, day, decision.DEFAULT_THRESHOLDS):
                    row = _evaluation_row(tenant, item, None)
                    history.append((row, day))
                    campaign.last_decision = item.figures.decision
            CampaignEvaluation.objects.for_tenant(tenant).bulk_create([row for row, _ in history])
            for row, day in history:
                moment = timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=9)
                CampaignEvaluation.objects.for_tenant(tenant).filter(pk=row.pk).update(created_at=moment)
            AdCampaign.objects.for_tenant(tenant).filter(pk=campaign.pk).update(last_decision=campaign.last_decision)
        seeded.append(campaign)
    return seeded
