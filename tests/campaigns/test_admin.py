"""The autopilot's back office pages and actions."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns import services
from campaigns.models import AdCampaign, AutopilotSettings, CampaignEvaluation, CampaignNotification, CampaignTask
from morvo.models import Membership
from tests.campaigns.conftest import LOSER, NOW, WINNER, make_campaign
from tests.factories import UserFactory

LIST = "/admin/campaigns/adcampaign/"


def page(campaign):
    return f"{LIST}{campaign.pk}/change/"


def act(campaign, action):
    return f"{LIST}{campaign.pk}/act/{action}/"


def client_for(tenant, role):
    user = UserFactory()
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def test_list_shows_status_and_decision_badges(two_tenants):
    tenant = two_tenants.a.tenant
    loser = make_campaign(tenant, **LOSER)
    services.campaigns_tick(tenant, now=NOW)
    response = two_tenants.a.web.get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'campaign-badge campaign-status--paused">Paused<' in html
    assert 'campaign-badge campaign-decision--PAUSE">Pause<' in html
    assert loser.name in html
    assert "1 unread autopilot notification" in html


def test_list_shows_only_the_tenants_campaigns(two_tenants):
    mine = make_campaign(two_tenants.a.tenant)
    theirs = make_campaign(two_tenants.b.tenant)
    html = two_tenants.a.web.get(LIST).content.decode()
    assert mine.name in html and theirs.name not in html


def test_campaign_page_has_charts_log_and_actions(two_tenants):
    tenant = two_tenants.a.tenant
    winner = make_campaign(tenant, **WINNER)
    services.campaigns_tick(tenant, now=NOW)
    response = two_tenants.a.web.get(page(winner))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="campaign-chart"') == 2
    assert 'data-series="spend"' in html and 'data-series="revenue"' in html and 'data-series="roas"' in html
    assert html.count('class="campaign-decision" data-decision="CONTINUE"') == 2  # marked on both charts
    assert '<script src="http' not in html and "cdn" not in html.lower()
    assert html.count("data-evaluation=") == 1
    assert "Sales rose 20.00% and views 20.00%" in html
    assert 'data-action="pause"' in html and 'data-action="evaluate"' in html
    assert 'data-action="approve"' not in html


def test_another_tenants_campaign_is_a_404_in_the_admin(two_tenants):
    theirs = make_campaign(two_tenants.b.tenant)
    assert two_tenants.a.web.get(page(theirs)).status_code == 404
    assert two_tenants.a.web.post(act(theirs, "pause")).status_code == 404
    assert AdCampaign.objects.all_tenants().get(pk=theirs.pk).status == "active"
    evaluation_list = "/admin/campaigns/campaignevaluation/"
    services.campaigns_tick(two_tenants.b.tenant, now=NOW)
    row = CampaignEvaluation.objects.all_tenants().get()
    assert two_tenants.a.web.get(f"{evaluation_list}{row.pk}/change/").status_code == 404
    settings_row = services.autopilot_settings_get(two_tenants.b.tenant)
    assert two_tenants.a.web.get(f"/admin/campaigns/autopilotsettings/{settings_row.pk}/change/").status_code == 404


def test_actions_pause_resume_evaluate(two_tenants):
    tenant = two_tenants.a.tenant
    campaign = make_campaign(tenant)
    web = two_tenants.a.web
    response = web.post(act(campaign, "pause"), follow=True)
    assert [str(m) for m in response.context["messages"]] == ["The campaign is paused."]
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "paused"
    web.post(act(campaign, "resume"))
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "active"
    response = web.post(act(campaign, "evaluate"), follow=True)
    row = CampaignEvaluation.objects.for_tenant(tenant).get()
    assert (row.actor, row.actor_user) == ("person", two_tenants.a.owner)
    # Today's window has no sales of the product (its data is in March): sales −100 %, paused.
    assert (row.decision, row.action_taken) == ("PAUSE", "paused")
    assert [str(m) for m in response.context["messages"]][-1].startswith("Evaluated: ")
    refused = web.post(act(campaign, "approve"), follow=True)
    assert [str(m) for m in refused.context["messages"]] == ["This cannot be done to a campaign that is Paused."]
    assert web.get(act(campaign, "pause")).status_code == 405
    assert web.post(act(campaign, "explode")).status_code == 404


def test_viewer_cannot_act(two_tenants):
    campaign = make_campaign(two_tenants.a.tenant)
    _, viewer = client_for(two_tenants.a.tenant, Membership.Role.VIEWER)
    assert viewer.get(page(campaign)).status_code == 200
    assert viewer.post(act(campaign, "pause")).status_code == 403
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "active"
    assert CampaignTask.objects.all_tenants().count() == 0


def test_metrics_csv_upload(two_tenants):
    from django.core.files.uploadedfile import SimpleUploadedFile

    campaign = make_campaign(two_tenants.a.tenant)
    upload = SimpleUploadedFile("m.csv", b"date,spend,revenue\n2026-01-05,7.00,21.00\n", content_type="text/csv")
    response = two_tenants.a.web.post(act(campaign, "metrics-csv"), {"file": upload}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["1 day(s) of metrics saved."]
    bad = SimpleUploadedFile("m.csv", b"when,spend\nx,1\n", content_type="text/csv")
    response = two_tenants.a.web.post(act(campaign, "metrics-csv"), {"file": bad}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["The CSV needs a header row with a date column."]


def test_bulk_pause_action(two_tenants):
    tenant = two_tenants.a.tenant
    first, second = make_campaign(tenant), make_campaign(tenant, status="draft")
    response = two_tenants.a.web.post(
        LIST, {"action": "pause_selected", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages[0] == "1 campaign(s) paused."
    assert AdCampaign.objects.all_tenants().get(pk=first.pk).status == "paused"
    assert AdCampaign.objects.all_tenants().get(pk=second.pk).status == "draft"


def test_autopilot_settings_page_keeps_the_token(two_tenants):
    tenant = two_tenants.a.tenant
    row = services.autopilot_settings_get(tenant)
    AutopilotSettings.objects.for_tenant(tenant).filter(pk=row.pk).update(impact_auth_token="keep-me")
    url = f"/admin/campaigns/autopilotsettings/{row.pk}/change/"
    html = two_tenants.a.web.get(url).content.decode()
    assert "keep-me" not in html
    data = {
        "enabled": "on",
        "emergency_stop": "on",
        "tick_minutes": 30,
        "window_days": 7,
        "max_budget_step": "0.50",
        "proposals_per_day": 3,
        "min_stock": 50,
        "min_views_to_sales": "2.00",
        "min_price": "20.00",
        "min_category_share": "0.0500",
        "impact_base_url": "",
        "impact_account_sid": "",
        "impact_auth_token": "",
    }
    response = two_tenants.a.web.post(url, data)
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.emergency_stop, row.tick_minutes, row.impact_auth_token) == (True, 30, "keep-me")
    html = two_tenants.a.web.get(LIST).content.decode()
    assert 'data-stop="tenant"' in html


def test_global_switch_is_for_superusers_only(two_tenants):
    assert two_tenants.a.web.get("/admin/campaigns/autopilotglobalswitch/").status_code == 403
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(superuser)
    response = client.post("/admin/campaigns/autopilotglobalswitch/add/", {"emergency_stop": "on", "reason": "audit"})
    assert response.status_code == 302
    assert services.global_stop_active() is True


def test_notifications_and_tasks_lists(two_tenants):
    tenant = two_tenants.a.tenant
    mine_campaign = make_campaign(tenant, **LOSER)
    theirs = make_campaign(two_tenants.b.tenant, **LOSER)
    services.campaigns_tick(tenant, now=NOW)
    services.campaigns_tick(two_tenants.b.tenant, now=NOW)
    html = two_tenants.a.web.get("/admin/campaigns/campaignnotification/").content.decode()
    assert f"Campaign “{mine_campaign.name}” was paused." in html
    assert theirs.name not in html
    task_html = two_tenants.a.web.get("/admin/campaigns/campaigntask/").content.decode()
    assert mine_campaign.name in task_html and theirs.name not in task_html
    their_task = CampaignTask.objects.for_tenant(two_tenants.b.tenant).get()
    assert two_tenants.a.web.get(f"/admin/campaigns/campaigntask/{their_task.pk}/change/").status_code == 404
    mine = CampaignNotification.objects.for_tenant(tenant).get()
    two_tenants.a.web.post(
        "/admin/campaigns/campaignnotification/", {"action": "mark_read", "_selected_action": [mine.pk]}
    )
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert CampaignNotification.objects.for_tenant(two_tenants.b.tenant).get().read_at is None


def test_anonymous_is_sent_to_sign_in(db):
    response = Client().get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_draft_page_offers_approval_and_approving_launches_it(two_tenants):
    campaign = make_campaign(two_tenants.a.tenant, status="draft")
    html = two_tenants.a.web.get(page(campaign)).content.decode()
    assert 'data-action="approve"' in html and 'data-action="pause"' not in html
    assert "Not evaluated yet." in html
    response = two_tenants.a.web.post(act(campaign, "approve"), follow=True)
    assert [str(m) for m in response.context["messages"]] == ["The campaign is approved and live."]
    assert AdCampaign.objects.all_tenants().get(pk=campaign.pk).status == "active"
    assert list(CampaignTask.objects.all_tenants().values_list("kind", flat=True)) == ["create"]


def test_the_campaign_page_in_arabic(two_tenants, settings):
    settings.LANGUAGE_CODE = "ar"
    campaign = make_campaign(two_tenants.a.tenant, **LOSER)
    services.campaigns_tick(two_tenants.a.tenant, now=NOW)
    html = two_tenants.a.web.get(page(campaign), HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert "سجل التقييمات" in html
    assert "تغيّرت المبيعات بنسبة -20.00٪، دون الحد -10٪." in html
