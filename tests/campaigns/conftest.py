"""Helpers of the campaign tests: a product with store stats before and during a campaign,
and a campaign with its daily metrics, on fixed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from campaigns.models import AdCampaign, AutopilotSettings, CampaignDailyMetric
from crm.models import ProductDailyStat
from tests.campaigns import fake_platform
from tests.factories import ProductFactory

# 15:00 in Riyadh: the tenants' "today" is 2026-03-10.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
START = TODAY - timedelta(days=6)  # a 7-day current window: START..TODAY; baseline: the 7 days before


def stats(product: Any, *, before: tuple[int, int], during: tuple[int, int]) -> None:
    """Per-day (units sold, views) in the 7 days before START and from START to TODAY."""
    rows = []
    for offset in range(-7, 7):
        day = START + timedelta(days=offset)
        units, views = before if offset < 0 else during
        rows.append(
            ProductDailyStat(
                tenant=product.tenant, product=product, date=day, units_sold=units, views=views, revenue=Decimal("0")
            )
        )
    ProductDailyStat.objects.all_tenants().bulk_create(rows)


def make_campaign(
    tenant: Any,
    *,
    before: tuple[int, int] = (10, 100),
    during: tuple[int, int] = (10, 100),
    spend: str = "10.00",
    revenue: str = "30.00",
    new_customers: int = 1,
    price: str = "100.00",
    daily_budget: str = "40.00",
    status: str = AdCampaign.Status.ACTIVE,
    platform: str = "manual",
    external_id: str = "",
    **fields: Any,
) -> AdCampaign:
    product = ProductFactory(tenant=tenant, price=Decimal(price), stock_quantity=100)
    stats(product, before=before, during=during)
    campaign = AdCampaign.objects.all_tenants().create(
        tenant=tenant,
        product=product,
        name=f"Campaign {product.sku}",
        platform=platform,
        external_id=external_id,
        status=status,
        daily_budget=Decimal(daily_budget),
        start_date=START,
        **fields,
    )
    CampaignDailyMetric.objects.all_tenants().bulk_create(
        [
            CampaignDailyMetric(
                tenant=tenant,
                campaign=campaign,
                date=START + timedelta(days=offset),
                spend=Decimal(spend),
                revenue=Decimal(revenue),
                clicks=10,
                impressions=500,
                conversions=new_customers,
                new_customers=new_customers,
            )
            for offset in range(7)
        ]
    )
    return campaign


# Shapes of the decision, with the 7-day window (spend 10/day → cost 70).
WINNER = {"before": (10, 100), "during": (12, 120)}  # sales +20 %, views +20 % → CONTINUE
LOSER = {"before": (10, 100), "during": (8, 100)}  # sales −20 % → PAUSE
DROWNING = {"revenue": "5.00"}  # roas < 0 → EMERGENCY_PAUSE
FLAT: dict[str, Any] = {}  # MONITOR


@pytest.fixture
def platform() -> Any:
    fake = fake_platform.start(fake_platform.FakePlatform())
    yield fake
    fake_platform.stop(fake)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The adapters' sleeps, recorded instead of slept."""
    from campaigns import adapters

    slept: list[float] = []
    monkeypatch.setattr(adapters, "sleep", slept.append)
    return slept


@pytest.fixture
def companion(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str, dict[str, Any]]]:
    """companion_notify calls, recorded."""
    import conversations.services

    sent: list[tuple[Any, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        conversations.services,
        "companion_notify",
        lambda tenant, content, metadata: sent.append((tenant, content, metadata)),
        raising=False,
    )
    return sent


def impact_settings(tenant: Any, platform: Any, **fields: Any) -> AutopilotSettings:
    row, _ = AutopilotSettings.objects.for_tenant(tenant).get_or_create(tenant=tenant)
    row.impact_base_url = platform.url
    row.impact_account_sid = fake_platform.ACCOUNT_SID
    row.impact_auth_token = fake_platform.AUTH_TOKEN
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def report_rows(
    campaign: AdCampaign, spend: str = "10.00", revenue: str = "30.00", customers: int = 1
) -> list[dict[str, Any]]:
    return [
        {
            "CampaignId": campaign.external_id,
            "Date": (START + timedelta(days=offset)).isoformat(),
            "Spend": spend,
            "Impressions": 500,
            "Clicks": 10,
            "Actions": customers,
            "Revenue": revenue,
            "NewCustomers": customers,
        }
        for offset in range(7)
    ]
