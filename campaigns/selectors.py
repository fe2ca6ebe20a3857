"""Reads of campaigns, and of the store data the autopilot needs. ``tenant`` first, always.

The store's tables belong to crm; they are only read here (through crm.selectors, or through
``for_tenant`` querysets and one aggregated SQL read that names the tenant explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet, Sum

from campaigns.models import (
    AdCampaign,
    AutopilotGlobalSwitch,
    CampaignDailyMetric,
    CampaignEvaluation,
    CampaignNotification,
    CampaignTask,
)
from crm import selectors as crm_selectors
from crm.models import Product, ProductDailyStat
from morvo.models import Tenant

ZERO = Decimal("0")


def campaign_list(tenant: Tenant) -> QuerySet[AdCampaign]:
    return AdCampaign.objects.for_tenant(tenant).select_related("product")


def campaign_get(tenant: Tenant, campaign_id: int) -> AdCampaign:
    """Raises ``AdCampaign.DoesNotExist`` for another tenant's campaign, as for a missing one."""
    return campaign_list(tenant).get(pk=campaign_id)  # type: ignore[no-any-return]


def metric_list(tenant: Tenant, campaign: AdCampaign) -> QuerySet[CampaignDailyMetric]:
    return CampaignDailyMetric.objects.for_tenant(tenant).filter(campaign=campaign)


def evaluation_list(tenant: Tenant, campaign: AdCampaign | None = None) -> QuerySet[CampaignEvaluation]:
    evaluations = CampaignEvaluation.objects.for_tenant(tenant).select_related("actor_user")
    return evaluations.filter(campaign=campaign) if campaign is not None else evaluations


def notification_list(tenant: Tenant) -> QuerySet[CampaignNotification]:
    return CampaignNotification.objects.for_tenant(tenant)


def task_list(tenant: Tenant) -> QuerySet[CampaignTask]:
    return CampaignTask.objects.for_tenant(tenant)


def global_stop_row() -> AutopilotGlobalSwitch | None:
    return AutopilotGlobalSwitch.objects.filter(pk=1).first()


def product_for(tenant: Tenant, product_id: int) -> Product | None:
    return crm_selectors.product_list(tenant).filter(pk=product_id).first()


def products_active(tenant: Tenant) -> QuerySet[Product]:
    return crm_selectors.product_list(tenant).filter(status=Product.Status.ACTIVE)


def evaluation_history(tenant: Tenant, limit: int = 200) -> list[tuple[Decimal, Decimal]]:
    """The tenant's latest (sales_impact, view_impact) pairs, for adaptive thresholds."""
    return list(
        CampaignEvaluation.objects.for_tenant(tenant)
        .order_by("-created_at", "-id")
        .values_list("sales_impact", "view_impact")[:limit]
    )


# --- the loop's figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class WindowFigures:
    """What one campaign's evaluation reads, in one row per campaign.

    The current window is the last ``window_days`` days up to today, starting no earlier
    than the campaign; the baseline is as many days right before the campaign started (the
    product before advertising). The previous window (as long, right before the current one)
    only serves the competition factor (cost per click then).
    """

    campaign_id: int
    window_start: date
    window_end: date
    baseline_start: date
    baseline_end: date
    baseline_sales: Decimal
    current_sales: Decimal
    baseline_views: Decimal
    current_views: Decimal
    revenue: Decimal
    cost: Decimal
    new_customers: int
    clicks: int
    previous_cost: Decimal
    previous_clicks: int
    spend_to_date: Decimal


WINDOW_SQL = """
WITH windows AS (
    SELECT c.id, c.product_id, c.start_date,
           GREATEST(c.start_date, %(today)s::date - %(days)s + 1) AS current_start
    FROM {campaigns} c
    WHERE c.tenant_id = %(tenant)s AND c.id = ANY(%(ids)s)
), spans AS (
    SELECT w.*, (%(today)s::date - w.current_start + 1) AS span FROM windows w
)
SELECT s.id, s.start_date, s.current_start, s.span,
       COALESCE(p.baseline_sales, 0), COALESCE(p.current_sales, 0),
       COALESCE(p.baseline_views, 0), COALESCE(p.current_views, 0),
       COALESCE(m.revenue, 0), COALESCE(m.cost, 0), COALESCE(m.new_customers, 0), COALESCE(m.clicks, 0),
       COALESCE(m.previous_cost, 0), COALESCE(m.previous_clicks, 0), COALESCE(m.spend_to_date, 0)
FROM spans s
LEFT JOIN LATERAL (
    SELECT SUM(d.units_sold) FILTER (WHERE d.date < s.start_date) AS baseline_sales,
           SUM(d.units_sold) FILTER (WHERE d.date >= s.current_start) AS current_sales,
           SUM(d.views) FILTER (WHERE d.date < s.start_date) AS baseline_views,
           SUM(d.views) FILTER (WHERE d.date >= s.current_start) AS current_views
    FROM {stats} d
    WHERE d.tenant_id = %(tenant)s AND d.product_id = s.product_id
      AND ((d.date BETWEEN s.start_date - s.span AND s.start_date - 1)
           OR (d.date BETWEEN s.current_start AND %(today)s::date))
) p ON TRUE
LEFT JOIN LATERAL (
    SELECT SUM(x.revenue) FILTER (WHERE x.date >= s.current_start) AS revenue,
           SUM(x.spend) FILTER (WHERE x.date >= s.current_start) AS cost,
           SUM(x.new_customers) FILTER (WHERE x.date >= s.current_start) AS new_customers,
           SUM(x.clicks) FILTER (WHERE x.date >= s.current_start) AS clicks,
           SUM(x.spend) FILTER (WHERE x.date < s.current_start AND x.date >= s.current_start - s.span)
               AS previous_cost,
           SUM(x.clicks) FILTER (WHERE x.date < s.current_start AND x.date >= s.current_start - s.span)
               AS previous_clicks,
           SUM(x.spend) AS spend_to_date
    FROM {metrics} x
    WHERE x.tenant_id = %(tenant)s AND x.campaign_id = s.id AND x.date <= %(today)s::date
) m ON TRUE
"""


def window_figures(tenant: Tenant, campaign_ids: list[int], today: date, window_days: int) -> dict[int, WindowFigures]:
    """One query for any number of the tenant's campaigns."""
    if not campaign_ids:
        return {}
    sql = WINDOW_SQL.format(
        campaigns=AdCampaign._meta.db_table,
        stats=ProductDailyStat._meta.db_table,
        metrics=CampaignDailyMetric._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant.pk, "ids": list(campaign_ids), "today": today, "days": window_days})
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        campaign_id, start_date, current_start, span = row[0], row[1], row[2], int(row[3])
        found[campaign_id] = WindowFigures(
            campaign_id=campaign_id,
            window_start=current_start,
            window_end=today,
            baseline_start=start_date - timedelta(days=span),
            baseline_end=start_date - timedelta(days=1),
            baseline_sales=Decimal(row[4]),
            current_sales=Decimal(row[5]),
            baseline_views=Decimal(row[6]),
            current_views=Decimal(row[7]),
            revenue=Decimal(row[8]),
            cost=Decimal(row[9]),
            new_customers=int(row[10]),
            clicks=int(row[11]),
            previous_cost=Decimal(row[12]),
            previous_clicks=int(row[13]),
            spend_to_date=Decimal(row[14]),
        )
    return found


# --- proposals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductCandidate:
    product: Product
    views_30d: int
    units_30d: int
    category_share: Decimal
    category_conversion: Decimal


def proposal_candidates(tenant: Tenant, today: date, criteria: Any) -> list[ProductCandidate]:
    """Active products passing the tenant's criteria (stock, price, views-to-sales ratio,
    category popularity as the category's share of the tenant's views over 30 days), with
    no campaign other than a completed one."""
    since = today - timedelta(days=29)
    stats = ProductDailyStat.objects.for_tenant(tenant).filter(date__range=(since, today))
    per_product = {
        row["product_id"]: row
        for row in stats.values("product_id").annotate(views=Sum("views"), units=Sum("units_sold")).order_by()
    }
    per_category: dict[str, tuple[int, int]] = {}
    for row in (
        stats.values("product__category")
        .annotate(views=Sum("views"), units=Sum("units_sold"), products=Count("product_id"))
        .order_by()
    ):
        per_category[row["product__category"]] = (row["views"] or 0, row["units"] or 0)
    total_views = sum(views for views, _ in per_category.values())
    busy = set(
        AdCampaign.objects.for_tenant(tenant)
        .exclude(status=AdCampaign.Status.COMPLETED)
        .exclude(product__isnull=True)
        .values_list("product_id", flat=True)
    )
    products = Product.objects.for_tenant(tenant).filter(
        status=Product.Status.ACTIVE, stock_quantity__gt=criteria.min_stock, price__gt=criteria.min_price
    )
    candidates = []
    for product in products.exclude(pk__in=busy).order_by("id"):
        row = per_product.get(product.pk)
        views, units = (row["views"] or 0, row["units"] or 0) if row else (0, 0)
        if views == 0:
            continue
        # No sale at all is an infinite ratio: views that do not convert yet.
        if units and Decimal(views) / Decimal(units) <= criteria.min_views_to_sales:
            continue
        category_views, category_units = per_category.get(product.category, (0, 0))
        share = Decimal(category_views) / Decimal(total_views) if total_views else ZERO
        if share < criteria.min_category_share:
            continue
        conversion = Decimal(category_units) / Decimal(category_views) if category_views else ZERO
        candidates.append(ProductCandidate(product, views, units, share, conversion))
    return candidates


# --- the admin's chart -----------------------------------------------------------------------


def chart_series(tenant: Tenant, campaign: AdCampaign, days: int = 90) -> dict[str, Any]:
    """Daily spend, revenue and ROAS, and the decisions taken, over the last ``days`` days of data."""
    metrics = list(metric_list(tenant, campaign).order_by("-date").values("date", "spend", "revenue")[:days])
    metrics.reverse()
    decisions = list(
        evaluation_list(tenant, campaign).order_by("created_at").values("window_end", "decision", "created_at")
    )
    return {"metrics": metrics, "decisions": decisions}
