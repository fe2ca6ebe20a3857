"""CrewAI end to end through its real OpenAI provider against the fake server on 127.0.0.1:
tool calls that read the tenant's data through the ToolBox, tokens per call from crewai's
events, fallback, tenant binding, concurrent turns kept apart, and lead extraction."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest

from agents_app.crew.run import crew_execute, extraction_run
from agents_app.crew.tools import build_crewai_tools
from agents_app.providers import ProvidersUnavailable
from agents_app.tools import ToolBox
from agents_app.tracing import Tracer
from tests.agents.fake_openai import failure, text, tool_call
from tests.factories import ProductFactory, TenantFactory

# Transactional: crewai may run tools in threads of its own, where a test's open transaction
# would be invisible.
pytestmark = pytest.mark.django_db(transaction=True)


def run(tenant, tracer, *, plan=None, intent="product_inquiry", language="ar", message="كم سعر العطر؟", context=None):
    return crew_execute(
        toolbox=ToolBox(tenant, tracer=tracer),
        tracer=tracer,
        system_prompt=f"You are Morvo, the assistant of {tenant.name}.",
        language=language,
        intent=intent,
        plan=plan if plan is not None else [{"id": "answer", "intent": intent, "depends_on": []}],
        user_message=message,
        history=[{"role": "user", "content": "السلام عليكم"}, {"role": "assistant", "content": "وعليكم السلام"}],
        context=context if context is not None else {"conversation_kind": "customer"},
    )


def steps(tracer, kind, name=None):
    return [s for s in tracer.steps if s["kind"] == kind and (name is None or s["name"] == name)]


def tool_messages(request):
    return [m for m in request["json"]["messages"] if m["role"] == "tool"]


def test_crew_calls_a_tool_on_the_tenants_data_and_answers(llm_settings, fake_openai):
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, name_ar="عطر العود الملكي", price=Decimal("349.00"), stock_quantity=4)
    fake_openai.enqueue(
        tool_call("get_product", {"product_id": product.pk}, prompt_tokens=1000, completion_tokens=100),
        text("سعر عطر العود الملكي 349 ريال، وبقي منه 4 قطع.", prompt_tokens=1500, completion_tokens=80),
    )
    tracer = Tracer(tenant)
    answer = run(tenant, tracer)

    assert answer.content == "سعر عطر العود الملكي 349 ريال، وبقي منه 4 قطع."
    assert answer.metadata["brain"] == "crewai"
    assert answer.metadata["process"] == "sequential"
    assert answer.metadata["specialists"] == ["conversation"]
    assert (answer.metadata["llm_calls"], answer.metadata["prompt_tokens"], answer.metadata["completion_tokens"]) == (
        2,
        2500,
        180,
    )
    first, second = fake_openai.requests
    offered = {tool["function"]["name"] for tool in first["json"]["tools"]}
    assert offered == {
        "search_products",
        "get_product",
        "check_stock",
        "search_knowledge",
        "create_stock_alert",
        "book_appointment",
        "escalate_to_human",
    }
    assert "Write the final answer in Arabic" in json.dumps(first["json"]["messages"], ensure_ascii=False)
    [tool_result] = tool_messages(second)
    result = json.loads(tool_result["content"])
    assert result["product"]["id"] == product.pk
    assert result["product"]["name"] == "عطر العود الملكي"
    assert result["product"]["price"] == "349.00"

    # Tokens per call, from crewai's events, priced at gpt-4o-mini.
    llm = steps(tracer, "llm")
    assert [(s["name"], s["prompt_tokens"], s["completion_tokens"]) for s in llm] == [
        ("crew:conversation", 1000, 100),
        ("crew:conversation", 1500, 80),
    ]
    assert [s["detail"]["call_type"] for s in llm] == ["tool_call", "llm_call"]
    assert [s["cost_usd"] for s in llm] == [Decimal("0.000210"), Decimal("0.000273")]
    assert tracer.cost_usd == Decimal("0.000483")
    # The ToolBox traced the tool call; the crew traced its own overhead.
    [tool_step] = steps(tracer, "tool", "get_product")
    assert tool_step["detail"] == {"arguments": {"product_id": product.pk}, "ok": True}
    [overhead] = steps(tracer, "stage", "crew_overhead")
    assert overhead["detail"]["llm_requests"] == 2
    assert overhead["latency_ms"] <= overhead["detail"]["wall_ms"]


def test_tools_are_bound_to_their_tenant(llm_settings, fake_openai):
    tenant, other = TenantFactory(), TenantFactory()
    secret = ProductFactory(tenant=other, name_ar="منتج سري", name_en="Secret product", price=Decimal("999.00"))
    fake_openai.enqueue(
        tool_call("get_product", {"product_id": secret.pk}),
        tool_call("check_stock", {"product_id": secret.pk}),
        text("لم أجد هذا المنتج."),
    )
    tracer = Tracer(tenant)
    answer = run(tenant, tracer)
    assert answer.content == "لم أجد هذا المنتج."
    results = [json.loads(m["content"]) for m in tool_messages(fake_openai.requests[2])]
    assert results == [{"error": "no such product"}, {"error": "no such product"}]
    sent = json.dumps([r["json"] for r in fake_openai.requests], ensure_ascii=False)
    assert "منتج سري" not in sent and "Secret product" not in sent and "999" not in sent
    assert [s["error"] for s in steps(tracer, "tool")] == ["no such product", "no such product"]


def test_companion_analytics_answers_in_english_with_the_strong_model(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_MODEL_SPECIALISTS = "gpt-4o"
    tenant = TenantFactory()
    fake_openai.enqueue(
        tool_call("kpi_summary", {"days": 30}, prompt_tokens=2000, completion_tokens=20),
        text("Revenue over 30 days: 0.00 SAR from 0 orders.", prompt_tokens=2400, completion_tokens=40),
    )
    tracer = Tracer(tenant)
    answer = run(
        tenant,
        tracer,
        intent="analytics_report",
        language="en",
        message="How were sales this month?",
        context={"conversation_kind": "companion"},
    )
    assert answer.content == "Revenue over 30 days: 0.00 SAR from 0 orders."
    assert answer.metadata["specialists"] == ["analytics"]
    assert {r["json"]["model"] for r in fake_openai.requests} == {"gpt-4o"}
    assert {t["function"]["name"] for t in fake_openai.requests[0]["json"]["tools"]} == {
        "kpi_summary",
        "campaign_history",
        "search_products",
    }
    kpis = json.loads(tool_messages(fake_openai.requests[1])[0]["content"])
    assert (kpis["revenue"], kpis["orders"], kpis["currency"]) == ("0.00", 0, tenant.currency)
    assert "Write the final answer in English" in json.dumps(fake_openai.requests[0]["json"]["messages"])
    # gpt-4o: $2.50 in, $10 out per million
    assert [s["cost_usd"] for s in steps(tracer, "llm")] == [Decimal("0.005200"), Decimal("0.006400")]


def test_a_plan_across_specialists_runs_a_hierarchical_crew(llm_settings, fake_openai):
    tenant = TenantFactory()
    fake_openai.respond_with(lambda body: text("خطة جاهزة", prompt_tokens=700, completion_tokens=30))
    plan = [
        {"id": "numbers", "specialist": "analytics", "description": "Summarise the last 30 days.", "depends_on": []},
        {"id": "post", "specialist": "content", "description": "Write a post.", "depends_on": ["numbers"]},
    ]
    tracer = Tracer(tenant)
    answer = run(tenant, tracer, plan=plan, intent="content_creation", context={"conversation_kind": "companion"})
    assert answer.content == "خطة جاهزة"
    assert answer.metadata["process"] == "hierarchical"
    assert answer.metadata["specialists"] == ["analytics", "content"]
    assert answer.metadata["tasks"] == ["numbers", "post"]
    # The manager runs each task (two plan tasks and the reply), answering directly here.
    assert len(fake_openai.requests) == 3
    first_system = fake_openai.requests[0]["json"]["messages"][0]["content"]
    assert "Morvo marketing lead" in first_system
    # The post task sees the numbers task's output as context (its depends_on).
    second_user = fake_openai.requests[1]["json"]["messages"][-1]["content"]
    assert "Write a post." in second_user and "خطة جاهزة" in second_user
    assert [s["prompt_tokens"] for s in steps(tracer, "llm")] == [700, 700, 700]
    assert tracer.prompt_tokens == 2100


def test_primary_failure_falls_back_to_the_fallback_provider(with_fallback, fake_openai, fake_openai_fallback):
    tenant = TenantFactory()
    fake_openai.respond_with(lambda body: failure(500))
    fake_openai_fallback.enqueue(text("رد من المزود البديل", prompt_tokens=300, completion_tokens=12))
    tracer = Tracer(tenant)
    answer = run(tenant, tracer)
    assert answer.content == "رد من المزود البديل"
    assert answer.metadata["provider"] == "fallback"
    assert len(fake_openai.requests) == 1  # no retries configured: straight to the fallback
    assert fake_openai_fallback.requests[0]["json"]["model"] == "gpt-4.1-mini"
    assert fake_openai_fallback.requests[0]["headers"]["authorization"] == "Bearer fallback-key"
    [failed] = steps(tracer, "stage", "crew_failed")
    assert failed["detail"] == {"provider": "primary"}
    ok = [s for s in steps(tracer, "llm") if not s["error"]]
    assert [(s["provider"], s["model"], s["prompt_tokens"]) for s in ok] == [("fallback", "gpt-4.1-mini", 300)]


def test_all_providers_failing_raises_unavailable(with_fallback, fake_openai, fake_openai_fallback):
    tenant = TenantFactory()
    fake_openai.respond_with(lambda body: failure(500))
    fake_openai_fallback.respond_with(lambda body: failure(503))
    tracer = Tracer(tenant)
    with pytest.raises(ProvidersUnavailable) as raised:
        run(tenant, tracer)
    assert "primary" in str(raised.value) and "fallback" in str(raised.value)
    assert (len(fake_openai.requests), len(fake_openai_fallback.requests)) == (1, 1)
    assert tracer.prompt_tokens == 0 and tracer.cost_usd == Decimal("0")


def test_an_open_circuit_skips_the_primary_for_the_crew_too(with_fallback, fake_openai, fake_openai_fallback):
    with_fallback.MORVO_LLM_BREAKER_THRESHOLD = 1
    tenant = TenantFactory()
    fake_openai.respond_with(lambda body: failure(500))
    fake_openai_fallback.respond_with(lambda body: text("بديل"))
    assert run(tenant, Tracer(tenant)).metadata["provider"] == "fallback"
    assert len(fake_openai.requests) == 1
    tracer = Tracer(tenant)
    assert run(tenant, tracer).metadata["provider"] == "fallback"
    assert len(fake_openai.requests) == 1  # the open circuit skipped the primary
    [skipped] = [s for s in steps(tracer, "llm") if s["error"]]
    assert (skipped["provider"], skipped["error"]) == ("primary", "circuit open")


def test_no_provider_configured_raises_before_building_anything(llm_settings, fake_openai):
    llm_settings.OPENAI_BASE_URL = ""
    tenant = TenantFactory()
    tracer = Tracer(tenant)
    with pytest.raises(ProvidersUnavailable, match="no LLM provider"):
        run(tenant, tracer)
    assert fake_openai.requests == [] and tracer.steps == []


def test_concurrent_turns_count_only_their_own_calls(llm_settings, fake_openai):
    tenant_a, tenant_b = TenantFactory(name="Alpha"), TenantFactory(name="Beta")

    def responder(body):
        sent = json.dumps(body["messages"], ensure_ascii=False)
        return text("تمام", prompt_tokens=111 if "ALPHA-TURN" in sent else 222, completion_tokens=1, delay=0.05)

    fake_openai.respond_with(responder)
    tracers = {"a": Tracer(tenant_a), "b": Tracer(tenant_b)}
    errors: list[BaseException] = []

    def turn(key, tenant, marker):
        try:
            for _ in range(2):
                run(tenant, tracers[key], message=f"{marker} كم السعر؟")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=turn, args=("a", tenant_a, "ALPHA-TURN")),
        threading.Thread(target=turn, args=("b", tenant_b, "BETA-TURN")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [s["prompt_tokens"] for s in steps(tracers["a"], "llm")] == [111, 111]
    assert [s["prompt_tokens"] for s in steps(tracers["b"], "llm")] == [222, 222]
    # Each call's latency, from its started and completed events, includes the fake's 50 ms.
    assert all(s["latency_ms"] >= 45 for key in "ab" for s in steps(tracers[key], "llm"))


# -- tools --------------------------------------------------------------------------------


def test_build_crewai_tools_wraps_the_toolbox(llm_settings):
    tenant, other = TenantFactory(), TenantFactory()
    mine = ProductFactory(tenant=tenant, stock_quantity=3)
    theirs = ProductFactory(tenant=other)
    tracer = Tracer(tenant)
    tools = build_crewai_tools(ToolBox(tenant, tracer=tracer), ["check_stock", "search_products"])
    check, search = tools
    assert (check.name, search.name) == ("check_stock", "search_products")
    assert check.args_schema.model_json_schema()["required"] == ["product_id"]
    assert set(search.args_schema.model_json_schema()["properties"]) == {"query", "limit", "in_stock_only"}
    assert json.loads(check.run(product_id=mine.pk)) == {
        "product_id": mine.pk,
        "name": mine.name_ar,
        "in_stock": True,
        "quantity": 3,
    }
    assert json.loads(check.run(product_id=theirs.pk)) == {"error": "no such product"}
    assert [s["name"] for s in steps(tracer, "tool")] == ["check_stock", "check_stock"]
    with pytest.raises(ValueError, match="unknown tool"):
        build_crewai_tools(ToolBox(tenant), ["drop_tables"])


# -- lead extraction ----------------------------------------------------------------------

LEAD = {
    "name": "نورة",
    "email": "noura@example.com",
    "phone": "+966500000000",
    "product_interest": "عطر العود",
    "budget": {"amount": 400, "currency": "SAR"},
    "urgency": "high",
    "engagement_score": 80,
    "intent_score": 90,
    "fit_score": 75,
    "labels": ["مهتم بالعطور", " ", "عميل محتمل"],
}


def test_extraction_run_qualifies_a_lead_against_the_tenants_catalogue(llm_settings, fake_openai):
    tenant, other = TenantFactory(), TenantFactory()
    oud = ProductFactory(tenant=tenant, name_ar="عطر العود", name_en="Oud perfume", category="perfume")
    ProductFactory(tenant=other, name_ar="عطر العود", name_en="Oud perfume", category="perfume")
    invalid = {**LEAD, "intent_score": 150}
    fake_openai.enqueue(
        text(json.dumps(invalid, ensure_ascii=False), prompt_tokens=500, completion_tokens=60),
        text(json.dumps(LEAD, ensure_ascii=False), prompt_tokens=600, completion_tokens=60),
    )
    tracer = Tracer(tenant)
    lead = extraction_run(
        toolbox=ToolBox(tenant, tracer=tracer),
        tracer=tracer,
        transcript="customer: أنا نورة، أبغى عطر العود بحدود 400 ريال اليوم",
        language="ar",
    )
    assert lead["name"] == "نورة" and lead["intent_score"] == 90 and lead["urgency"] == "high"
    assert lead["budget"] == {"amount": 400, "currency": "SAR"}
    assert lead["labels"] == ["مهتم بالعطور", "عميل محتمل"]
    assert lead["product_ids"] == [oud.pk]
    assert len(fake_openai.requests) == 2
    assert "$.intent_score must be at most 100" in fake_openai.requests[1]["json"]["messages"][-1]["content"]
    assert {r["json"]["model"] for r in fake_openai.requests} == {"gpt-4o-mini"}
    assert tracer.prompt_tokens == 1100


def test_extraction_run_without_providers_raises(llm_settings, fake_openai):
    llm_settings.OPENAI_BASE_URL = ""
    tenant = TenantFactory()
    with pytest.raises(ProvidersUnavailable):
        extraction_run(toolbox=ToolBox(tenant), tracer=Tracer(tenant), transcript="hi", language="en")
    assert fake_openai.requests == []


def test_a_reply_in_the_wrong_language_is_rewritten_once(llm_settings, fake_openai):
    tenant = TenantFactory()
    fake_openai.enqueue(
        text("The oud perfume costs 349 SAR.", prompt_tokens=900, completion_tokens=10),
        text("سعر عطر العود 349 ريال.", prompt_tokens=60, completion_tokens=12),
    )
    tracer = Tracer(tenant)
    answer = run(tenant, tracer, language="ar")
    assert answer.content == "سعر عطر العود 349 ريال."
    assert answer.metadata["rewritten_from"] == "en"
    rewrite = fake_openai.requests[1]["json"]
    assert rewrite["messages"][0]["content"].startswith("Rewrite the user's text in Arabic")
    assert rewrite["messages"][1]["content"] == "The oud perfume costs 349 SAR."
    assert [(s["name"], s["prompt_tokens"]) for s in steps(tracer, "llm")] == [
        ("crew:conversation", 900),
        ("conversation", 60),
    ]


def test_a_reply_in_the_right_language_is_left_alone(llm_settings, fake_openai):
    tenant = TenantFactory()
    fake_openai.enqueue(text("Our Oud Royal perfume is 349 SAR."))
    answer = run(tenant, Tracer(tenant), language="en", message="How much is the oud perfume?")
    assert answer.content == "Our Oud Royal perfume is 349 SAR."
    assert "rewritten_from" not in answer.metadata and "language_mismatch" not in answer.metadata
    assert len(fake_openai.requests) == 1
