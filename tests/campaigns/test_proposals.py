"""Proposals (product selection, budget, ad copy, auto-launch) and the demo seed."""

from __future__ import annotations

import sys
import types
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import AdCampaign, CampaignDailyMetric, CampaignEvaluation, CampaignTask
from crm.models import ProductDailyStat
from tests.campaigns.conftest import TODAY
from tests.factories import ProductFactory, TenantFactory


@pytest.fixture
def ad_copy(monkeypatch):
    """The content specialist, scripted (agents_app.services.ad_copy_write)."""
    calls = []

    def ad_copy_write(tenant, product, language):
        calls.append((tenant.pk, product.pk, language))
        return {
            "headline": f"عرض {product.name_ar}",
            "body": "عطر يدوم طويلاً",
            "call_to_action": "اطلب الآن",
            "hashtags": ["#عطور"],
            "image_idea": "زجاجة على رمال ذهبية",
        }

    try:
        import agents_app.services as module
    except ImportError:
        module = types.ModuleType("agents_app.services")
        monkeypatch.setitem(sys.modules, "agents_app.services", module)
    monkeypatch.setattr(module, "ad_copy_write", ad_copy_write, raising=False)
    return calls


def product_with_views(tenant, *, views, units, price="100.00", stock=80, category="perfume", today=TODAY, **fields):
    product = ProductFactory(tenant=tenant, price=Decimal(price), stock_quantity=stock, category=category, **fields)
    ProductDailyStat.objects.all_tenants().bulk_create(
        [
            ProductDailyStat(
                tenant=tenant, product=product, date=today - timedelta(days=offset), views=views, units_sold=units
            )
            for offset in range(30)
        ]
    )
    return product


def test_products_are_selected_ranked_and_budgeted(db, ad_copy):
    tenant = TenantFactory()
    best = product_with_views(tenant, views=100, units=10, price="200.00")  # ratio 10
    second = product_with_views(tenant, views=100, units=10, price="50.00")
    product_with_views(tenant, views=100, units=60)  # ratio 1.67: sells already
    product_with_views(tenant, views=100, units=10, stock=50)  # stock not above 50
    product_with_views(tenant, views=100, units=10, price="20.00")  # price not above 20
    product_with_views(tenant, views=3, units=0, category="rare")  # category with 3 / 503 of the views
    busy = product_with_views(tenant, views=100, units=10)
    AdCampaign.objects.all_tenants().create(tenant=tenant, product=busy, name="x", daily_budget=1, start_date=TODAY)

    created = services.campaigns_propose(tenant, limit=5, today=TODAY)

    assert [campaign.product_id for campaign in created] == [best.pk, second.pk]
    # The perfume category sells 110 units per 600 views.
    first = AdCampaign.objects.for_tenant(tenant).get(product=best)
    conversion = Decimal(30 * (10 + 10 + 60 + 10 + 10 + 10)) / Decimal(30 * 600)
    roi = (Decimal("200.00") * Decimal(100) * conversion).quantize(Decimal("0.01"))
    assert first.expected_roi == roi == Decimal("3666.67")
    assert first.daily_budget == Decimal("120.00")  # min(200 × 0.6, max(15, 3666.67 × 0.3))
    assert AdCampaign.objects.for_tenant(tenant).get(product=second).daily_budget == Decimal("30.00")
    assert (first.status, first.proposed_by_autopilot, first.platform) == ("draft", True, "manual")
    assert first.ad_copy["hashtags"] == ["#عطور"]
    assert first.creative_text == f"عرض {best.name_ar}\nعطر يدوم طويلاً\nاطلب الآن"
    assert ad_copy == [(tenant.pk, best.pk, "ar"), (tenant.pk, second.pk, "ar")]


def test_auto_launch_and_the_daily_claim(db, ad_copy):
    tenant = TenantFactory()
    product_with_views(tenant, views=100, units=10, today=services.tenant_today(tenant, timezone.now()))
    autopilot = services.autopilot_settings_get(tenant)
    autopilot.auto_propose = autopilot.auto_launch = True
    autopilot.save()
    first = services.campaigns_propose_daily(tenant)
    again = services.campaigns_propose_daily(tenant)
    assert (len(first), again) == (1, [])
    assert first[0].status == "active"
    assert list(CampaignTask.objects.for_tenant(tenant).values_list("kind", flat=True)) == ["create"]


def test_no_proposals_under_an_emergency_stop(db, ad_copy):
    tenant = TenantFactory()
    product_with_views(tenant, views=100, units=10)
    autopilot = services.autopilot_settings_get(tenant)
    autopilot.auto_propose = True
    autopilot.emergency_stop = True
    autopilot.save()
    product_with_views(tenant, views=100, units=10, today=services.tenant_today(tenant, timezone.now()))
    assert services.campaigns_propose_daily(tenant) == []
    assert AdCampaign.objects.all_tenants().count() == 0
    assert ad_copy == []


def test_a_failing_content_specialist_skips_the_product(db, monkeypatch, ad_copy):
    import agents_app.services as module

    def broken(tenant, product, language):
        raise RuntimeError("no model")

    monkeypatch.setattr(module, "ad_copy_write", broken)
    tenant = TenantFactory()
    product_with_views(tenant, views=100, units=10)
    assert services.campaigns_propose(tenant, today=TODAY) == []
    assert AdCampaign.objects.all_tenants().count() == 0


def test_proposals_read_only_the_tenants_products(db, ad_copy):
    mine, other = TenantFactory(), TenantFactory()
    product_with_views(other, views=100, units=10)
    assert services.campaigns_propose(mine, today=TODAY) == []
    assert AdCampaign.objects.all_tenants().count() == 0


def test_demo_seed_is_idempotent(db):
    tenant = TenantFactory()
    for index in range(4):
        product = ProductFactory(tenant=tenant, price=Decimal(100 + index))
        ProductDailyStat.objects.all_tenants().bulk_create(
            [
                ProductDailyStat(
                    tenant=tenant, product=product, date=TODAY - timedelta(days=offset), views=80, units_sold=4
                )
                for offset in range(80)
            ]
        )
    seeded = services.campaigns_seed_demo(tenant, today=TODAY)
    assert len(seeded) == 3
    assert CampaignDailyMetric.objects.for_tenant(tenant).count() == 3 * 35
    assert CampaignEvaluation.objects.for_tenant(tenant).count() == 3 * 5
    decisions = dict(AdCampaign.objects.for_tenant(tenant).values_list("external_id", "last_decision"))
    assert decisions["demo-loser"] == "EMERGENCY_PAUSE"
    again = services.campaigns_seed_demo(tenant, today=TODAY)
    assert [campaign.pk for campaign in again] == [campaign.pk for campaign in seeded]
    assert CampaignDailyMetric.objects.for_tenant(tenant).count() == 3 * 35
    assert CampaignEvaluation.objects.for_tenant(tenant).count() == 3 * 5


def test_demo_seed_on_the_demo_tenant(db):
    from crm.demo_data import seed_demo

    tenant = seed_demo().tenant
    seeded = services.campaigns_seed_demo(tenant)
    assert len(seeded) == 3
    campaigns = AdCampaign.objects.for_tenant(tenant)
    assert campaigns.count() == 3
    assert CampaignDailyMetric.objects.for_tenant(tenant).count() == 3 * 35
    assert dict(campaigns.values_list("external_id", "last_decision"))["demo-loser"] == "EMERGENCY_PAUSE"
    assert all(campaign.last_decision for campaign in campaigns)
    services.campaigns_seed_demo(tenant)
    assert AdCampaign.objects.for_tenant(tenant).count() == 3
