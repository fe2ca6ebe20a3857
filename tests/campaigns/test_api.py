"""The campaigns REST API: CRUD, metric ingest (JSON and CSV), evaluations, actions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns import services
from campaigns.models import AdCampaign, CampaignDailyMetric, CampaignEvaluation, CampaignTask
from tests.campaigns.conftest import LOSER, START, make_campaign
from tests.factories import ProductFactory

LIST = "/api/v1/campaigns"


def detail(campaign, suffix=""):
    return f"{LIST}/{campaign.pk}{suffix}"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def new_body(product, **overrides):
    return {
        "product": product.pk,
        "name": "حملة العيد",
        "objective": "sales",
        "daily_budget": "45.00",
        "total_budget": "900.00",
        "start_date": "2026-03-01",
        "end_date": "2026-03-31",
        "creative_text": "خصم ٢٠٪",
        "targeting": {"cities": ["Riyadh"]},
        **overrides,
    }


def test_create_list_update_delete(two_tenants):
    world = two_tenants.a
    product = ProductFactory(tenant=world.tenant)
    created = world.api.post(LIST, new_body(product), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["platform"], body["currency"], body["daily_budget"]) == (
        "draft",
        "manual",
        "SAR",
        "45.00",
    )
    campaign = AdCampaign.objects.for_tenant(world.tenant).get()
    assert campaign.targeting == {"cities": ["Riyadh"]}

    listed = world.api.get(LIST).json()
    assert [row["id"] for row in listed["results"]] == [campaign.pk]
    assert two_tenants.b.api.get(LIST).json()["results"] == []

    patched = world.api.patch(detail(campaign), {"daily_budget": "60.00"}, format="json")
    assert (patched.status_code, patched.json()["daily_budget"]) == (200, "60.00")

    assert world.api.delete(detail(campaign)).status_code == 204
    assert AdCampaign.objects.for_tenant(world.tenant).count() == 0


def test_create_refuses_bad_input_and_writes_nothing(two_tenants):
    world = two_tenants.a
    product = ProductFactory(tenant=world.tenant)
    foreign = ProductFactory(tenant=two_tenants.b.tenant)
    cases = [
        (new_body(foreign), "product"),
        (new_body(product, daily_budget="-1"), "daily_budget"),
        (new_body(product, end_date="2026-02-01"), "end_date"),
        (new_body(product, status="active"), "status"),
        (new_body(product, currency="riyal"), "currency"),
    ]
    for body, field in cases:
        response = world.api.post(LIST, body, format="json")
        assert response.status_code == 400, (field, response.json())
        assert list(response.json()["error"]["fields"]) == [field]
    assert AdCampaign.objects.all_tenants().count() == 0


def test_live_campaign_cannot_be_deleted(tenant_world):
    campaign = make_campaign(tenant_world.tenant)
    response = tenant_world.api.delete(detail(campaign))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "campaign_live")
    assert AdCampaign.objects.for_tenant(tenant_world.tenant).count() == 1


def test_viewer_reads_but_cannot_write(tenant_world):
    campaign = make_campaign(tenant_world.tenant)
    _, _, viewer = tenant_world.member("viewer")
    assert viewer.get(detail(campaign)).status_code == 200
    assert viewer.post(detail(campaign, "/pause")).status_code == 403
    assert viewer.patch(detail(campaign), {"name": "x"}, format="json").status_code == 403
    assert AdCampaign.objects.for_tenant(tenant_world.tenant).get().status == "active"


def test_anonymous_is_refused(db, client):
    assert client.get(LIST).status_code == 401


@pytest.mark.parametrize(
    ("suffix", "method", "data"),
    [
        ("", "get", None),
        ("", "patch", {"name": "stolen"}),
        ("", "delete", None),
        ("/metrics", "get", None),
        ("/metrics", "post", {"metrics": [{"date": "2026-03-01", "spend": "1.00"}]}),
        ("/evaluations", "get", None),
        ("/pause", "post", {}),
        ("/resume", "post", {}),
        ("/approve", "post", {}),
        ("/evaluate", "post", {}),
    ],
)
def test_another_tenants_campaign_is_a_404(two_tenants, suffix, method, data):
    campaign = make_campaign(two_tenants.a.tenant)
    path = detail(campaign, suffix)
    before = (
        AdCampaign.objects.all_tenants().get(pk=campaign.pk).status,
        CampaignDailyMetric.objects.all_tenants().count(),
    )
    response = getattr(two_tenants.b.api, method)(path, data, format="json")
    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
    after = (
        AdCampaign.objects.all_tenants().get(pk=campaign.pk).status,
        CampaignDailyMetric.objects.all_tenants().count(),
    )
    assert after == before
    assert CampaignEvaluation.objects.all_tenants().count() == 0


def test_assert_isolated_on_detail(two_tenants):
    campaign = make_campaign(two_tenants.a.tenant)
    two_tenants.assert_isolated(detail(campaign))
    two_tenants.assert_isolated(detail(campaign), "patch", {"name": "x"})


def test_metrics_ingest_json_replaces_days(tenant_world):
    campaign = make_campaign(tenant_world.tenant)
    body = {
        "metrics": [
            {
                "date": START.isoformat(),
                "spend": "12.50",
                "impressions": 900,
                "clicks": 40,
                "conversions": 3,
                "revenue": "80.00",
                "new_customers": 2,
            },
            {"date": "2026-02-01", "spend": 3, "revenue": "0"},
        ]
    }
    response = tenant_world.api.post(detail(campaign, "/metrics"), body, format="json")
    assert response.json() == {"saved": 2}
    rows = {row.date.isoformat(): row for row in CampaignDailyMetric.objects.for_tenant(tenant_world.tenant)}
    assert len(rows) == 8
    assert (rows[START.isoformat()].spend, rows[START.isoformat()].new_customers) == (Decimal("12.50"), 2)
    assert rows["2026-02-01"].spend == Decimal("3.00")
    listed = tenant_world.api.get(detail(campaign, "/metrics")).json()
    assert listed[0] == {
        "date": "2026-02-01",
        "spend": "3.00",
        "impressions": 0,
        "clicks": 0,
        "conversions": 0,
        "revenue": "0.00",
        "new_customers": 0,
    }


@pytest.mark.parametrize(
    "rows",
    [
        [{"date": "2026-02-01", "spend": "-1"}],
        [{"date": "not a date"}],
        [{"date": "2026-02-01", "spend": "1.234"}],
        [{"date": "2026-02-01"}, {"date": "2026-02-01"}],
        [{"date": "2099-01-01"}],
        [{"date": "2026-02-01", "clicks": "many"}],
    ],
)
def test_metrics_ingest_is_all_or_nothing(tenant_world, rows):
    campaign = make_campaign(tenant_world.tenant)
    before = CampaignDailyMetric.objects.for_tenant(tenant_world.tenant).count()
    body = {"metrics": [{"date": "2026-02-02", "spend": "5.00"}, *rows]}
    response = tenant_world.api.post(detail(campaign, "/metrics"), body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["metrics"]
    assert CampaignDailyMetric.objects.for_tenant(tenant_world.tenant).count() == before


def test_metrics_ingest_csv(tenant_world):
    campaign = make_campaign(tenant_world.tenant)
    csv_body = "date,spend,clicks,revenue,new_customers\n2026-02-01,4.50,9,20.00,1\n2026-02-02,5.00,10,0,0\n"
    response = tenant_world.api.generic("POST", detail(campaign, "/metrics"), csv_body, content_type="text/csv")
    assert response.json() == {"saved": 2}
    row = CampaignDailyMetric.objects.for_tenant(tenant_world.tenant).get(date="2026-02-01")
    assert (row.spend, row.clicks, row.revenue, row.new_customers) == (Decimal("4.50"), 9, Decimal("20.00"), 1)
    bad = tenant_world.api.generic("POST", detail(campaign, "/metrics"), "day,spend\n1,2\n", content_type="text/csv")
    assert (bad.status_code, list(bad.json()["error"]["fields"])) == (400, ["file"])
    xml = tenant_world.api.generic("POST", detail(campaign, "/metrics"), "<x/>", content_type="application/xml")
    assert xml.status_code == 415
    assert CampaignDailyMetric.objects.for_tenant(tenant_world.tenant).count() == 9


def test_actions_pause_resume_and_refusals(tenant_world):
    campaign = make_campaign(tenant_world.tenant)
    paused = tenant_world.api.post(detail(campaign, "/pause"))
    assert (paused.status_code, paused.json()["status"], paused.json()["paused_by"]) == (200, "paused", "person")
    again = tenant_world.api.post(detail(campaign, "/pause"))
    assert (again.status_code, again.json()["error"]["code"]) == (422, "invalid_status")
    resumed = tenant_world.api.post(detail(campaign, "/resume"))
    assert resumed.json()["status"] == "active"
    kinds = list(CampaignTask.objects.for_tenant(tenant_world.tenant).order_by("id").values_list("kind", flat=True))
    assert kinds == ["pause", "resume"]


def test_approve_launches_a_draft(tenant_world):
    product = ProductFactory(tenant=tenant_world.tenant)
    campaign = services.campaign_create(
        tenant_world.tenant, product=product, name="n", daily_budget=Decimal("10"), start_date=START
    )
    response = tenant_world.api.post(detail(campaign, "/approve"))
    assert response.json()["status"] == "active"
    assert list(CampaignTask.objects.for_tenant(tenant_world.tenant).values_list("kind", flat=True)) == ["create"]
    assert tenant_world.api.post(detail(campaign, "/approve")).status_code == 422


def test_evaluate_now_logs_the_person(tenant_world, settings):
    campaign = make_campaign(tenant_world.tenant, **LOSER)
    response = tenant_world.api.post(detail(campaign, "/evaluate"))
    assert response.status_code == 201
    body = response.json()
    assert (body["actor"], body["actor_name"], body["decision"]) == ("person", "owner@solo.test", "PAUSE")
    evaluations = tenant_world.api.get(detail(campaign, "/evaluations")).json()
    assert [row["id"] for row in evaluations["results"]] == [body["id"]]


def test_evaluate_now_refuses_a_draft(tenant_world):
    campaign = make_campaign(tenant_world.tenant, status="draft")
    response = tenant_world.api.post(detail(campaign, "/evaluate"))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "not_live")
    assert CampaignEvaluation.objects.all_tenants().count() == 0


def test_patch_refuses_another_tenants_product(two_tenants):
    campaign = make_campaign(two_tenants.a.tenant)
    foreign = ProductFactory(tenant=two_tenants.b.tenant)
    response = two_tenants.a.api.patch(detail(campaign), {"product": foreign.pk}, format="json")
    assert (response.status_code, list(response.json()["error"]["fields"])) == (400, ["product"])
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).product_id == campaign.product_id


def test_evaluate_now_under_the_emergency_stop_acts_on_nothing(tenant_world):
    campaign = make_campaign(tenant_world.tenant, **LOSER)
    services.tenant_stop_set(tenant_world.tenant, True)
    body = tenant_world.api.post(detail(campaign, "/evaluate")).json()
    assert (body["decision"], body["action_taken"], body["action_detail"]) == ("PAUSE", "stopped", {"wanted": "paused"})
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "active"
    assert CampaignTask.objects.all_tenants().count() == 0


def test_a_new_budget_of_a_live_campaign_goes_to_the_platform(tenant_world):
    campaign = make_campaign(tenant_world.tenant, daily_budget="40.00")
    response = tenant_world.api.patch(detail(campaign), {"daily_budget": "55.00"}, format="json")
    assert response.json()["daily_budget"] == "55.00"
    task = CampaignTask.objects.for_tenant(tenant_world.tenant).get()
    assert (task.kind, task.details) == ("set_budget", {"old": "40.00", "new": "55.00"})
    tenant_world.api.patch(detail(campaign), {"name": "renamed"}, format="json")
    assert CampaignTask.objects.for_tenant(tenant_world.tenant).count() == 1


def test_a_refused_budget_change_changes_nothing(tenant_world, platform, no_backoff):
    from tests.campaigns.conftest import impact_settings

    impact_settings(tenant_world.tenant, platform)
    campaign = make_campaign(tenant_world.tenant, platform="impact", external_id="Z1", daily_budget="40.00")
    platform.fail_with = 503
    response = tenant_world.api.patch(detail(campaign), {"daily_budget": "55.00"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (503, "platform_unavailable")
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).daily_budget == Decimal("40.00")
    platform.fail_with = None
    ok = tenant_world.api.patch(detail(campaign), {"daily_budget": "55.00"}, format="json")
    assert ok.status_code == 200
    assert platform.calls("PUT")[-1][2] == {"DailyBudget": "55.00"}
