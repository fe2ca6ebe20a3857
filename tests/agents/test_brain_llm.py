"""The turn with a model configured: the cheap model routes, CrewAI specialists answer, costs
are traced per call; a failing provider or a spent budget falls back to the offline brain."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agents_app import pipeline
from agents_app.models import AgentRun, AgentStep, AISettings
from conversations import services as chat
from conversations.models import Message
from crm.models import LeadQualification
from tests.agents.fake_openai import failure, text, tool_call
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _turn(tenant, conversation, content):
    message = Message.objects.for_tenant(tenant).create(
        tenant=tenant, conversation=conversation, role=Message.Role.USER, content=content
    )
    conversation.refresh_from_db()
    return pipeline.handle_turn(tenant, conversation, message)


def test_companion_turn_through_crewai_is_routed_answered_and_costed(two_tenants, llm_settings, fake_openai):
    tenant = two_tenants.a.tenant
    conversation = chat.conversation_start_companion(tenant, two_tenants.a.owner)
    fake_openai.enqueue(
        text(
            '{"intent": "analytics_report", "sentiment": 0.2, "confidence": 0.93}',
            prompt_tokens=300,
            completion_tokens=20,
        ),
        tool_call("kpi_summary", {"days": 30}, prompt_tokens=1200, completion_tokens=30),
        text("إيراداتك في آخر 30 يومًا صفر ريال؛ لنبدأ بحملة تعريفية.", prompt_tokens=1600, completion_tokens=60),
    )

    reply = _turn(tenant, conversation, "كيف كانت مبيعاتي هالشهر؟")

    assert reply.content == "إيراداتك في آخر 30 يومًا صفر ريال؛ لنبدأ بحملة تعريفية."
    assert reply.metadata["brain"] == "crewai"
    assert reply.metadata["intent"] == "analytics_report"
    router_request = fake_openai.requests[0]["json"]
    assert router_request["model"] == "gpt-4o-mini"
    assert "<<<USER_MESSAGE" in json.dumps(router_request["messages"], ensure_ascii=False)
    run = AgentRun.objects.for_tenant(tenant).get()
    assert (run.brain, run.status, run.prompt_tokens, run.completion_tokens) == ("crewai", "succeeded", 3100, 110)
    # gpt-4o-mini: $0.15 / $0.60 per million tokens, priced per call.
    assert run.cost_usd == Decimal("0.000531")
    llm_steps = AgentStep.objects.for_tenant(tenant).filter(run=run, kind="llm").order_by("position")
    assert [step.prompt_tokens for step in llm_steps] == [300, 1200, 1600]
    assert all(step.input_price_per_million == Decimal("0.15") for step in llm_steps)
    assert AgentStep.objects.for_tenant(tenant).filter(run=run, kind="tool", name="kpi_summary").count() == 1


def test_a_failing_provider_never_fails_the_turn(two_tenants, llm_settings, fake_openai):
    tenant = two_tenants.a.tenant
    ProductFactory(tenant=tenant, name_ar="مسك الطهارة الأبيض", name_en="White Musk", stock_quantity=5)
    fake_openai.respond_with(lambda body: failure(500))
    conversation = chat.conversation_start_visitor(tenant, "visitor-llm-down")

    reply = _turn(tenant, conversation, "بكم مسك الطهارة الأبيض؟")

    assert reply.metadata["brain"] == "offline"
    assert "مسك الطهارة الأبيض" in reply.content
    run = AgentRun.objects.for_tenant(tenant).get()
    assert run.status == "fallback"
    assert "ProvidersUnavailable" in run.error or "provider" in run.error.lower()
    assert AgentStep.objects.for_tenant(tenant).filter(run=run, kind="llm").exclude(error="").exists()
    # The customer's lead is still qualified, offline.
    qualification = LeadQualification.objects.for_tenant(tenant).get()
    assert qualification.source == "offline"


def test_a_spent_monthly_budget_means_no_model_calls_and_staff_are_told_once(two_tenants, llm_settings, fake_openai):
    tenant = two_tenants.a.tenant
    AISettings.objects.for_tenant(tenant).create(tenant=tenant, monthly_budget_usd=Decimal("0.01"))
    AgentRun.objects.for_tenant(tenant).create(tenant=tenant, cost_usd=Decimal("0.02"), brain="crewai")
    customer = chat.conversation_start_visitor(tenant, "visitor-budget")

    first = _turn(tenant, customer, "السلام عليكم")
    second = _turn(tenant, customer, "هلا")

    assert fake_openai.requests == []
    assert first.metadata["brain"] == second.metadata["brain"] == "offline"
    assert AISettings.objects.for_tenant(tenant).get().budget_exhausted_month != ""
    notices = Message.objects.for_tenant(tenant).filter(
        conversation__kind="companion", role=Message.Role.ASSISTANT, metadata__kind="llm_budget_spent"
    )
    assert notices.count() == 1


def test_another_tenants_spend_does_not_count_against_a_budget(two_tenants, llm_settings, fake_openai):
    AISettings.objects.for_tenant(two_tenants.a.tenant).create(
        tenant=two_tenants.a.tenant, monthly_budget_usd=Decimal("1.00")
    )
    AgentRun.objects.for_tenant(two_tenants.b.tenant).create(
        tenant=two_tenants.b.tenant, cost_usd=Decimal("50"), brain="crewai"
    )
    assert pipeline.budget_allows_llm(two_tenants.a.tenant) is True
