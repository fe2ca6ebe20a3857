"""The Impact-style HTTP client against a fake server that checks the requests, and the manual adapter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from campaigns.adapters import AdapterError, PermanentAdapterError
from campaigns.adapters.impact import ImpactAdapter
from campaigns.adapters.manual import ManualAdapter
from campaigns.models import AdCampaign, CampaignTask
from tests.campaigns import fake_platform
from tests.campaigns.conftest import START, make_campaign, report_rows
from tests.factories import TenantFactory


def client(platform, token=fake_platform.AUTH_TOKEN):
    return ImpactAdapter(platform.url, fake_platform.ACCOUNT_SID, token, timeout=5)


def test_create_details_pause_resume_budget(db, platform):
    tenant = TenantFactory()
    campaign = make_campaign(tenant, platform="impact", daily_budget="33.50", targeting={"age": "18-35"})
    adapter = client(platform)
    external_id = adapter.create(campaign)
    assert external_id == "C1001"
    method, path, body = platform.requests[0]
    assert (method, path) == ("POST", "/Advertisers/IRacc123/Campaigns")
    assert body == {
        "Name": campaign.name,
        "Objective": "SALES",
        "DailyBudget": "33.50",
        "Currency": "SAR",
        "StartDate": START.isoformat(),
        "EndDate": None,
        "Creative": "",
        "Targeting": {"age": "18-35"},
    }
    campaign.external_id = external_id
    assert adapter.fetch_details(campaign)["State"] == "ACTIVE"
    adapter.pause(campaign)
    assert platform.campaigns["C1001"]["State"] == "PAUSED"
    adapter.resume(campaign)
    adapter.set_budget(campaign, Decimal("41.25"))
    assert platform.campaigns["C1001"]["DailyBudget"] == "41.25"
    assert [(m, p, b) for m, p, b in platform.requests[2:]] == [
        ("PUT", "/Advertisers/IRacc123/Campaigns/C1001", {"State": "PAUSED"}),
        ("PUT", "/Advertisers/IRacc123/Campaigns/C1001", {"State": "ACTIVE"}),
        ("PUT", "/Advertisers/IRacc123/Campaigns/C1001", {"DailyBudget": "41.25"}),
    ]
    assert platform.problems == []
    adapter.close()


def test_report_is_followed_page_by_page_and_mapped_to_campaigns(db, platform):
    tenant = TenantFactory()
    first = make_campaign(tenant, platform="impact", external_id="A")
    second = make_campaign(tenant, platform="impact", external_id="B")
    platform.records.extend(report_rows(first, spend="9.99") + report_rows(second, revenue="50.00"))
    platform.records.append({**report_rows(first)[0], "CampaignId": "not-ours"})
    platform.page_size = 5
    found = client(platform).fetch_metrics([first, second], START, date(2026, 3, 10))
    gets = platform.calls("GET")
    assert len(gets) == 3  # 15 records, 5 a page
    assert gets[0][1].startswith(
        "/Advertisers/IRacc123/Reports/CampaignDailyPerformance?StartDate=2026-03-04&EndDate=2026-03-10"
    )
    assert "Page=3" in gets[2][1]
    assert {key: len(rows) for key, rows in found.items()} == {first.pk: 7, second.pk: 7}
    assert found[first.pk][0].spend == Decimal("9.99")
    assert (found[second.pk][0].revenue, found[second.pk][0].new_customers) == (Decimal("50.00"), 1)
    assert platform.problems == []


def test_wrong_credentials_are_a_permanent_error(db, platform):
    tenant = TenantFactory()
    campaign = make_campaign(tenant, platform="impact", external_id="A")
    with pytest.raises(PermanentAdapterError, match="HTTP 401"):
        client(platform, token="wrong").pause(campaign)
    assert platform.problems == ["bad auth on /Advertisers/IRacc123/Campaigns/A"]


def test_server_errors_and_network_errors_are_transient(db, platform):
    tenant = TenantFactory()
    campaign = make_campaign(tenant, platform="impact", external_id="A")
    platform.fail_with = 503
    with pytest.raises(AdapterError) as caught:
        client(platform).pause(campaign)
    assert caught.value.transient is True
    closed = ImpactAdapter("http://127.0.0.1:9", fake_platform.ACCOUNT_SID, "x", timeout=1)
    with pytest.raises(AdapterError) as network:
        closed.pause(campaign)
    assert network.value.transient is True


def test_malformed_report_and_missing_configuration(db, platform):
    tenant = TenantFactory()
    campaign = make_campaign(tenant, platform="impact", external_id="A")
    platform.records.append({"CampaignId": "A", "Date": "2026-03-05", "Spend": "lots"})
    with pytest.raises(PermanentAdapterError, match="malformed"):
        client(platform).fetch_metrics([campaign], START, date(2026, 3, 10))
    with pytest.raises(PermanentAdapterError):
        ImpactAdapter("", "", "")
    no_id = make_campaign(tenant, platform="impact")
    with pytest.raises(PermanentAdapterError, match="no id"):
        client(platform).pause(no_id)


def test_manual_adapter_turns_changes_into_staff_tasks(db):
    tenant = TenantFactory()
    campaign = make_campaign(tenant)
    adapter = ManualAdapter()
    adapter.pause(campaign)
    adapter.set_budget(campaign, Decimal("12.00"))
    assert adapter.fetch_metrics([campaign], START, START) == {}
    assert CampaignTask.objects.all_tenants().count() == 0  # nothing until flushed
    adapter.flush()
    tasks = list(CampaignTask.objects.for_tenant(tenant).order_by("id").values_list("kind", "details", "status"))
    assert tasks == [("pause", {}, "open"), ("set_budget", {"old": "40.00", "new": "12.00"}, "open")]
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "active"
