"""The autopilot loop: evaluate, decide, act, log, tell; once per slot; stops; failures."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import services, tasks
from campaigns.models import (
    AdapterCircuit,
    AdCampaign,
    CampaignEvaluation,
    CampaignNotification,
    CampaignTask,
)
from tests.campaigns.conftest import (
    DROWNING,
    LOSER,
    NOW,
    START,
    TODAY,
    WINNER,
    impact_settings,
    make_campaign,
    report_rows,
)
from tests.factories import TenantFactory


def fresh(campaign):
    return AdCampaign.objects.all_tenants().get(pk=campaign.pk)


def evaluations(tenant):
    return CampaignEvaluation.objects.for_tenant(tenant)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def test_tick_decides_acts_logs_and_tells(db, django_capture_on_commit_callbacks, companion):
    tenant = TenantFactory(default_language="en")
    winner = make_campaign(tenant, daily_budget="50.00", **WINNER)
    loser = make_campaign(tenant, daily_budget="40.00", **LOSER)
    drowning = make_campaign(tenant, daily_budget="30.00", **DROWNING)
    flat = make_campaign(tenant, daily_budget="20.00")

    with django_capture_on_commit_callbacks(execute=True):
        report = services.campaigns_tick(tenant, now=NOW)

    assert report.evaluated == 4
    assert report.actions == {"budget_changed": 1, "paused": 1, "emergency_paused": 1, "none": 1}
    assert (fresh(loser).status, fresh(loser).paused_by) == ("paused", "autopilot")
    assert fresh(drowning).status == "emergency_paused"
    # Freed 40 + 30 = 70; the winner grows by at most 50 % of its 50: 25.
    assert (fresh(winner).status, fresh(winner).daily_budget) == ("active", Decimal("75.00"))
    assert fresh(flat).daily_budget == Decimal("20.00")
    total_after = sum(c.daily_budget for c in AdCampaign.objects.for_tenant(tenant).filter(status="active"))
    assert total_after == Decimal("95.00") <= Decimal("140.00")

    rows = {row.campaign_id: row for row in evaluations(tenant)}
    assert {pk: row.decision for pk, row in rows.items()} == {
        winner.pk: "CONTINUE",
        loser.pk: "PAUSE",
        drowning.pk: "EMERGENCY_PAUSE",
        flat.pk: "MONITOR",
    }
    loser_row = rows[loser.pk]
    assert (loser_row.baseline_sales, loser_row.current_sales) == (Decimal("70.00"), Decimal("56.00"))
    assert (loser_row.baseline_views, loser_row.current_views) == (Decimal("700.00"), Decimal("700.00"))
    assert (loser_row.window_start, loser_row.window_end) == (START, TODAY)
    assert (loser_row.baseline_start, loser_row.baseline_end) == (START - timedelta(days=7), START - timedelta(days=1))
    assert (loser_row.cost, loser_row.revenue, loser_row.new_customers) == (Decimal("70.00"), Decimal("210.00"), 7)
    assert (loser_row.sales_impact, loser_row.roas, loser_row.cpa) == (Decimal("-20"), Decimal("2"), Decimal("10"))
    assert loser_row.efficiency_score == Decimal("-12")
    assert loser_row.action_taken == "paused" and loser_row.actor == "autopilot"
    assert loser_row.reason_en == "Sales changed by -20.00%, below the -10% limit."
    assert loser_row.reason_ar == "تغيّرت المبيعات بنسبة -20.00٪، دون الحد -10٪."
    assert loser_row.thresholds["continue_sales_above"] == "15" and loser_row.thresholds["adaptive"] is False
    assert set(loser_row.risk_factors) == {"budget_burn", "performance_decline", "competition", "lifecycle"}
    assert rows[winner.pk].action_detail == {"old_budget": "50.00", "new_budget": "75.00"}

    notices = CampaignNotification.objects.for_tenant(tenant)
    assert sorted(notices.values_list("level", flat=True)) == ["critical", "info", "warning"]
    tasks_made = CampaignTask.objects.for_tenant(tenant)
    assert sorted(tasks_made.values_list("kind", flat=True)) == ["pause", "pause", "set_budget"]
    assert len(companion) == 1
    assert companion[0][0] == tenant
    assert companion[0][1].startswith("The autopilot evaluated 4 campaign(s):")
    assert companion[0][2]["actions"] == {
        str(winner.pk): "budget_changed",
        str(loser.pk): "paused",
        str(drowning.pk): "emergency_paused",
    }


def test_a_second_tick_in_the_same_slot_does_nothing(db, companion):
    tenant = TenantFactory()
    make_campaign(tenant, **LOSER)
    make_campaign(tenant)
    first = services.campaigns_tick(tenant, now=NOW)
    second = services.campaigns_tick(tenant, now=NOW + timedelta(minutes=30))
    assert (first.evaluated, second.evaluated, second.candidates) == (2, 0, 0)
    assert evaluations(tenant).count() == 2
    third = services.campaigns_tick(tenant, now=NOW + timedelta(hours=1))
    # The next slot evaluates again (the paused one too: the autopilot may resume it).
    assert third.evaluated == 2
    assert evaluations(tenant).count() == 4


def test_the_tick_interval_is_per_tenant(db):
    tenant = TenantFactory()
    make_campaign(tenant)
    autopilot = services.autopilot_settings_get(tenant)
    autopilot.tick_minutes = 240
    autopilot.save()
    services.campaigns_tick(tenant, now=NOW)
    assert services.campaigns_tick(tenant, now=NOW + timedelta(hours=3, minutes=59)).evaluated == 0
    assert services.campaigns_tick(tenant, now=NOW + timedelta(hours=4)).evaluated == 1


def test_autopilot_resumes_what_it_paused_but_not_what_a_person_paused(db):
    tenant = TenantFactory()
    by_autopilot = make_campaign(tenant, status="paused", paused_by="autopilot", **WINNER)
    by_person = make_campaign(tenant, status="paused", paused_by="person", **WINNER)
    emergency = make_campaign(tenant, status="emergency_paused", paused_by="autopilot", **WINNER)
    report = services.campaigns_tick(tenant, now=NOW)
    assert report.evaluated == 1
    assert (fresh(by_autopilot).status, fresh(by_autopilot).paused_by) == ("active", "")
    assert fresh(by_person).status == "paused"
    assert fresh(emergency).status == "emergency_paused"
    assert list(CampaignTask.objects.for_tenant(tenant).values_list("kind", flat=True)) == ["resume"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ticks_evaluate_each_campaign_once(platform, no_backoff):
    tenant = TenantFactory()
    impact_settings(tenant, platform)
    campaigns = []
    for index in range(12):
        shape = LOSER if index % 2 else {}
        campaign = make_campaign(tenant, platform="impact", external_id=f"X{index}", **shape)
        platform.records.extend(report_rows(campaign))
        campaigns.append(campaign)
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def run():
        try:
            barrier.wait()
            reports.append(services.campaigns_tick(tenant, now=NOW))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sum(report.evaluated for report in reports) == 12
    assert evaluations(tenant).count() == 12
    assert evaluations(tenant).values("campaign").distinct().count() == 12
    # Six losers paused once each on the platform, never twice.
    puts = platform.calls("PUT")
    assert sorted(path.rsplit("/", 1)[1] for _, path, _ in puts) == sorted(f"X{i}" for i in range(1, 12, 2))
    assert all(body == {"State": "PAUSED"} for _, _, body in puts)
    assert platform.problems == []


def test_emergency_stop_of_the_tenant_logs_but_does_not_act(db, companion, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    loser = make_campaign(tenant, daily_budget="40.00", **LOSER)
    winner = make_campaign(tenant, daily_budget="50.00", **WINNER)
    services.tenant_stop_set(tenant, True)
    with django_capture_on_commit_callbacks(execute=True):
        report = services.campaigns_tick(tenant, now=NOW)
    assert report.stopped is True
    assert (fresh(loser).status, fresh(winner).daily_budget) == ("active", Decimal("50.00"))
    rows = {row.campaign_id: row for row in evaluations(tenant)}
    assert (rows[loser.pk].decision, rows[loser.pk].action_taken) == ("PAUSE", "stopped")
    assert rows[loser.pk].action_detail == {"wanted": "paused"}
    assert rows[winner.pk].action_taken == "stopped"
    assert CampaignTask.objects.for_tenant(tenant).count() == 0
    assert CampaignNotification.objects.for_tenant(tenant).count() == 2


def test_global_emergency_stop_covers_every_tenant(db, platform, no_backoff):
    tenant = TenantFactory()
    impact_settings(tenant, platform)
    loser = make_campaign(tenant, platform="impact", external_id="L1", **LOSER)
    platform.records.extend(report_rows(loser))
    services.global_stop_set(True, "audit")
    services.campaigns_tick(tenant, now=NOW)
    assert fresh(loser).status == "active"
    assert platform.calls("PUT") == []
    assert evaluations(tenant).get().action_taken == "stopped"
    services.global_stop_set(False)
    services.campaigns_tick(tenant, now=NOW + timedelta(hours=1))
    assert fresh(loser).status == "paused"
    assert len(platform.calls("PUT")) == 1


def test_the_emergency_stop_setting_stops_too(db, settings):
    settings.CAMPAIGNS_EMERGENCY_STOP = True
    tenant = TenantFactory()
    loser = make_campaign(tenant, **LOSER)
    services.campaigns_tick(tenant, now=NOW)
    assert fresh(loser).status == "active"
    assert evaluations(tenant).get().action_taken == "stopped"


def test_platform_failure_retries_with_backoff_then_opens_the_circuit_and_recovers(db, platform, no_backoff, settings):
    settings.CAMPAIGNS_ADAPTER_ATTEMPTS = 3
    settings.CAMPAIGNS_ADAPTER_BACKOFF_SECONDS = 0.5
    settings.CAMPAIGNS_CIRCUIT_FAILURE_THRESHOLD = 2
    tenant = TenantFactory()
    impact_settings(tenant, platform)
    loser = make_campaign(tenant, platform="impact", external_id="L1", **LOSER)
    platform.records.extend(report_rows(loser, spend="11.00"))
    platform.fail_with = 503

    first = services.campaigns_tick(tenant, now=NOW)
    assert (first.evaluated, first.skipped_platforms) == (0, ["impact"])
    assert len(platform.calls("GET")) == 3
    assert no_backoff == [0.5, 1.0]
    circuit = AdapterCircuit.objects.for_tenant(tenant).get()
    assert (circuit.failures, circuit.open_until) == (1, None)
    assert fresh(loser).evaluated_slot is None  # not claimed: tried again next tick
    assert evaluations(tenant).count() == 0

    services.campaigns_tick(tenant, now=NOW + timedelta(minutes=5))
    circuit.refresh_from_db()
    assert circuit.failures == 2 and circuit.open_until is not None
    calls = len(platform.requests)

    # Open: no call reaches the platform.
    assert services.campaigns_tick(tenant, now=NOW + timedelta(minutes=10)).skipped_platforms == ["impact"]
    assert len(platform.requests) == calls

    # After the cool-down the platform is back: the trial call closes the circuit.
    platform.fail_with = None
    AdapterCircuit.objects.for_tenant(tenant).update(open_until=timezone.now() - timedelta(seconds=1))
    recovered = services.campaigns_tick(tenant, now=NOW + timedelta(minutes=15))
    assert recovered.evaluated == 1
    circuit.refresh_from_db()
    assert (circuit.failures, circuit.open_until, circuit.last_error) == (0, None, "")
    assert fresh(loser).status == "paused"
    row = evaluations(tenant).get()
    assert row.cost == Decimal("77.00")  # the platform's figures were stored and used
    assert platform.problems == []


def test_a_transient_failure_is_retried_and_succeeds(db, platform, no_backoff):
    tenant = TenantFactory()
    impact_settings(tenant, platform)
    loser = make_campaign(tenant, platform="impact", external_id="L1", **LOSER)
    platform.records.extend(report_rows(loser))
    platform.fail_with, platform.fail_times = 502, 1
    report = services.campaigns_tick(tenant, now=NOW)
    assert report.evaluated == 1
    assert no_backoff == [0.5]
    assert AdapterCircuit.objects.for_tenant(tenant).get().failures == 0


def test_a_refused_action_is_logged_as_failed(db, platform, no_backoff):
    tenant = TenantFactory()
    impact_settings(tenant, platform)
    loser = make_campaign(tenant, platform="impact", external_id="L1", **LOSER)
    platform.records.extend(report_rows(loser))

    original = platform.server.RequestHandlerClass.do_PUT

    def refuse(handler):
        handler._send(400, {"Message": "campaign locked"})

    platform.server.RequestHandlerClass.do_PUT = refuse
    try:
        services.campaigns_tick(tenant, now=NOW)
    finally:
        platform.server.RequestHandlerClass.do_PUT = original
    row = evaluations(tenant).get()
    assert (row.decision, row.action_taken, row.action_detail["wanted"]) == ("PAUSE", "failed", "paused")
    assert "HTTP 400" in row.action_detail["error"]
    assert fresh(loser).status == "active"
    assert no_backoff == []  # a refusal is not retried


def test_tick_of_one_tenant_never_touches_another(db):
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    theirs = make_campaign(tenant_a, **LOSER)
    report = services.campaigns_tick(tenant_b, now=NOW)
    assert report.candidates == 0
    assert fresh(theirs).status == "active"
    assert CampaignEvaluation.objects.all_tenants().count() == 0


def test_adaptive_thresholds_are_used_and_shown_when_opted_in(db):
    tenant = TenantFactory()
    autopilot = services.autopilot_settings_get(tenant)
    autopilot.adaptive_thresholds = True
    autopilot.save()
    old = make_campaign(tenant)
    history = [
        CampaignEvaluation(
            tenant=tenant,
            campaign=old,
            window_start=START,
            window_end=TODAY,
            baseline_start=START,
            baseline_end=START,
            baseline_sales=0,
            current_sales=0,
            baseline_views=0,
            current_views=0,
            revenue=0,
            cost=0,
            new_customers=0,
            product_price=0,
            sales_impact=Decimal("40"),
            view_impact=Decimal("40"),
            efficiency_score=0,
            risk_score=0,
            decision="CONTINUE",
            reason_ar="-",
            reason_en="-",
            actor="person",
        )
        for _ in range(20)
    ]
    CampaignEvaluation.objects.all_tenants().bulk_create(history)
    AdCampaign.objects.all_tenants().filter(pk=old.pk).update(status="completed")
    winner = make_campaign(tenant, **WINNER)  # +20 % / +20 %: CONTINUE by default
    services.campaigns_tick(tenant, now=NOW)
    row = evaluations(tenant).get(campaign=winner)
    assert row.thresholds["adaptive"] is True
    assert row.thresholds["continue_sales_above"] == "30.00"
    assert row.decision == "OPTIMIZE"  # +20 % sits inside the learned 5..30 band


def test_beat_fans_out_one_job_per_tenant_with_live_campaigns(db, monkeypatch):
    tenant_a, tenant_b, idle = TenantFactory(), TenantFactory(), TenantFactory()
    make_campaign(tenant_a)
    make_campaign(tenant_a)
    make_campaign(tenant_b, status="paused")
    make_campaign(idle, status="draft")
    sent = []
    monkeypatch.setattr(
        tasks.campaigns_tenant_tick_task, "apply_async", lambda args, **options: sent.append((args, options))
    )
    assert tasks.campaigns_tick_task() == 2
    assert sorted(sent) == sorted([((tenant_a.pk,), {"expires": 300}), ((tenant_b.pk,), {"expires": 300})])


def test_tenant_task_runs_the_tick_for_its_tenant_only(db):
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    mine = make_campaign(tenant_a)
    theirs = make_campaign(tenant_b)
    result = tasks.campaigns_tenant_tick_task(tenant_a.pk)
    assert result["evaluated"] == 1 and result["proposed"] == 0
    assert fresh(mine).evaluated_slot is not None
    assert fresh(theirs).evaluated_slot is None


def test_the_beat_entry_runs_the_fan_out_with_an_expiry(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["campaigns-autopilot-tick"]
    assert entry["task"] == "campaigns.tasks.campaigns_tick_task"
    assert entry["schedule"] == 300.0
    assert entry["options"] == {"expires": 300}


def test_companion_message_is_in_the_tenants_language_and_idempotent(db, companion, django_capture_on_commit_callbacks):
    tenant = TenantFactory(default_language="ar")
    make_campaign(tenant, **LOSER)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaigns_tick(tenant, now=NOW)
    ((_, content, metadata),) = companion
    assert content.startswith("قيّم الطيار الآلي 1 حملة:")
    assert metadata["idempotency_key"] == f"campaigns:{tenant.pk}:2026-03-10T12:00:00+00:00"


def test_no_companion_message_when_nothing_was_done(db, companion, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    make_campaign(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaigns_tick(tenant, now=NOW)
    assert companion == []
    assert CampaignNotification.objects.for_tenant(tenant).count() == 0


def test_a_persons_change_during_the_tick_is_not_overwritten(db, monkeypatch):
    tenant = TenantFactory()
    campaign = make_campaign(tenant)
    original = services.selectors.window_figures

    def meanwhile(*args, **kwargs):
        AdCampaign.objects.all_tenants().filter(pk=campaign.pk).update(
            status="paused", paused_by="person", daily_budget=9
        )
        return original(*args, **kwargs)

    monkeypatch.setattr(services.selectors, "window_figures", meanwhile)
    services.campaigns_tick(tenant, now=NOW)
    row = fresh(campaign)
    assert (row.status, row.paused_by, row.daily_budget, row.last_decision) == (
        "paused",
        "person",
        Decimal("9.00"),
        "MONITOR",
    )


def test_the_owner_reads_the_tick_in_the_companion(tenant_world, django_capture_on_commit_callbacks):
    from conversations.models import Conversation, Message

    tenant = tenant_world.tenant
    make_campaign(tenant, **LOSER)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaigns_tick(tenant, now=NOW)
        services.campaigns_tick(tenant, now=NOW + timedelta(minutes=1))  # same slot: nothing new
    conversation = Conversation.objects.for_tenant(tenant).get(kind="companion", staff_user=tenant_world.owner)
    messages = list(Message.objects.for_tenant(tenant).filter(conversation=conversation))
    assert len(messages) == 1
    assert messages[0].role == "assistant"
    assert messages[0].content.startswith("قيّم الطيار الآلي 1 حملة:")
    assert messages[0].metadata["kind"] == "campaign_autopilot"
