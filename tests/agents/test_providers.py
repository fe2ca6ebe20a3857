"""The provider chain against fake OpenAI-compatible servers on 127.0.0.1: tokens traced and
costed, retries with backoff, fallback, circuit breaker, structured output with one repair."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import openai
import pytest

from agents_app import providers
from agents_app.providers import ProviderChain, ProvidersUnavailable, SchemaError, parse_and_validate
from agents_app.tracing import Tracer
from tests.agents.fake_openai import Reply, failure, text

MESSAGES = [{"role": "user", "content": "مرحبا"}]
SCHEMA = {
    "type": "object",
    "required": ["intent", "confidence"],
    "additionalProperties": False,
    "properties": {
        "intent": {"type": "string", "enum": ["greeting", "other"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def llm_steps(tracer: Tracer) -> list[dict]:
    return [step for step in tracer.steps if step["kind"] == "llm"]


# -- configuration ------------------------------------------------------------------------


def test_nothing_configured_means_unavailable_and_no_request(llm_settings, fake_openai):
    llm_settings.OPENAI_BASE_URL = ""
    assert providers.configured() is False
    assert providers.role_config("router") == []
    tracer = Tracer(None)
    with pytest.raises(ProvidersUnavailable, match="no LLM provider is configured"):
        providers.chain().complete(MESSAGES, role="router", tracer=tracer)
    assert fake_openai.requests == []
    assert tracer.steps == []


def test_a_key_alone_configures_openai(llm_settings):
    llm_settings.OPENAI_BASE_URL = ""
    llm_settings.OPENAI_API_KEY = "sk-test"
    assert providers.configured() is True
    assert providers.role_config("specialists") == [
        {
            "name": "primary",
            "base_url": "https://api.openai.com/v1",
            "api_key": "sk-test",
            "model": "gpt-4o-mini",
            "timeout": 5.0,
            "retries": 0,
            "breaker_key": "primary|https://api.openai.com/v1",
        }
    ]


def test_role_config_lists_primary_then_fallback_with_their_models(with_fallback, fake_openai, fake_openai_fallback):
    with_fallback.MORVO_LLM_MODEL_SPECIALISTS = "gpt-4o"
    configs = providers.role_config("specialists")
    assert [(c["name"], c["base_url"], c["api_key"], c["model"]) for c in configs] == [
        ("primary", fake_openai.base_url, "none", "gpt-4o"),
        ("fallback", fake_openai_fallback.base_url, "fallback-key", "gpt-4.1-mini"),
    ]
    assert providers.role_config("extraction")[0]["model"] == "gpt-4o-mini"


def test_unknown_role_is_refused(llm_settings):
    with pytest.raises(ValueError, match="unknown LLM role"):
        providers.chain().complete(MESSAGES, role="poet")


# -- success ------------------------------------------------------------------------------


def test_success_is_traced_with_tokens_and_cost(llm_settings, fake_openai):
    fake_openai.enqueue(text("أهلًا بك", prompt_tokens=1200, completion_tokens=300))
    tracer = Tracer(None)
    completion = providers.chain().complete(MESSAGES, role="router", tracer=tracer, temperature=0.1, max_tokens=50)
    assert completion.content == "أهلًا بك"
    assert completion.parsed is None
    assert (completion.provider, completion.model) == ("primary", "gpt-4o-mini")
    assert (completion.prompt_tokens, completion.completion_tokens) == (1200, 300)
    assert completion.latency_ms >= 0
    [request] = fake_openai.requests
    assert request["json"]["model"] == "gpt-4o-mini"
    assert request["json"]["messages"] == MESSAGES
    assert request["json"]["temperature"] == 0.1
    assert request["json"]["max_tokens"] == 50
    assert request["headers"]["authorization"] == "Bearer none"  # a local server without a key
    [step] = llm_steps(tracer)
    assert (step["name"], step["provider"], step["model"]) == ("router", "primary", "gpt-4o-mini")
    assert (step["prompt_tokens"], step["completion_tokens"]) == (1200, 300)
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    assert step["cost_usd"] == Decimal("0.000360")
    assert step["input_price_per_million"] == Decimal("0.15")
    assert step["error"] == ""


def test_the_role_picks_the_model(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_MODEL_SPECIALISTS = "gpt-4o"
    fake_openai.enqueue(text("plan", prompt_tokens=1000, completion_tokens=1000))
    tracer = Tracer(None)
    completion = providers.chain().complete(MESSAGES, role="specialists", tracer=tracer)
    assert completion.model == "gpt-4o"
    assert fake_openai.requests[0]["json"]["model"] == "gpt-4o"
    assert tracer.cost_usd == Decimal("0.012500")


# -- retries, fallback, breaker -----------------------------------------------------------


def test_500_then_success_retries_with_backoff(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_RETRIES = 2
    llm_settings.MORVO_LLM_BACKOFF_SECONDS = 0.5
    fake_openai.enqueue(failure(500), text("done", prompt_tokens=10, completion_tokens=2))
    sleeps: list[float] = []
    tracer = Tracer(None)
    completion = ProviderChain(providers=providers.providers(), sleep=sleeps.append).complete(
        MESSAGES, role="router", tracer=tracer
    )
    assert completion.content == "done"
    assert len(fake_openai.requests) == 2
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.75  # 0.5 s × jitter in [0.5, 1.5)
    first, second = llm_steps(tracer)
    assert first["error"].startswith("HTTP 500") and first["detail"]["attempt"] == 1
    assert second["error"] == "" and second["detail"]["attempt"] == 2 and second["prompt_tokens"] == 10


def test_backoff_grows_exponentially_and_429_is_retried(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_RETRIES = 2
    llm_settings.MORVO_LLM_BACKOFF_SECONDS = 1.0
    fake_openai.enqueue(failure(429), failure(503), text("ok"))
    sleeps: list[float] = []
    completion = ProviderChain(providers=providers.providers(), sleep=sleeps.append).complete(MESSAGES, role="router")
    assert completion.content == "ok"
    assert len(fake_openai.requests) == 3
    assert 0.5 <= sleeps[0] < 1.5 and 1.0 <= sleeps[1] < 3.0


def test_a_client_error_is_not_retried(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_RETRIES = 3
    fake_openai.enqueue(failure(400, error_message="bad request"))
    sleeps: list[float] = []
    with pytest.raises(ProvidersUnavailable, match="HTTP 400"):
        ProviderChain(providers=providers.providers(), sleep=sleeps.append).complete(MESSAGES, role="router")
    assert len(fake_openai.requests) == 1
    assert sleeps == []


def test_timeout_moves_to_the_fallback_provider(with_fallback, fake_openai, fake_openai_fallback):
    with_fallback.MORVO_LLM_TIMEOUT_SECONDS = 0.3
    fake_openai.enqueue(Reply(content="too late", delay=1.0))
    fake_openai_fallback.enqueue(text("من البديل", prompt_tokens=40, completion_tokens=5))
    tracer = Tracer(None)
    started = time.perf_counter()
    completion = providers.chain().complete(MESSAGES, role="router", tracer=tracer)
    assert time.perf_counter() - started < 0.9
    assert (completion.content, completion.provider, completion.model) == ("من البديل", "fallback", "gpt-4.1-nano")
    assert fake_openai_fallback.requests[0]["headers"]["authorization"] == "Bearer fallback-key"
    primary_step, fallback_step = llm_steps(tracer)
    assert primary_step["provider"] == "primary" and primary_step["error"].startswith("timeout")
    assert primary_step["prompt_tokens"] == 0
    assert fallback_step["provider"] == "fallback" and fallback_step["model"] == "gpt-4.1-nano"
    assert fallback_step["cost_usd"] == Decimal("0.000006")  # 40 × 0.10 + 5 × 0.40, per million


def test_malformed_response_moves_to_the_fallback(with_fallback, fake_openai, fake_openai_fallback):
    fake_openai.enqueue(Reply(malformed=True))
    fake_openai_fallback.enqueue(text("fine"))
    completion = providers.chain().complete(MESSAGES, role="router")
    assert (completion.content, completion.provider) == ("fine", "fallback")
    assert len(fake_openai.requests) == 1


def test_circuit_breaker_opens_skips_and_half_opens(with_fallback, fake_openai, fake_openai_fallback):
    with_fallback.MORVO_LLM_BREAKER_THRESHOLD = 2
    with_fallback.MORVO_LLM_BREAKER_COOLDOWN_SECONDS = 0.3
    fake_openai.respond_with(lambda body: failure(500))
    fake_openai_fallback.respond_with(lambda body: text("fallback answer"))
    for _ in range(2):
        assert providers.chain().complete(MESSAGES, role="router").provider == "fallback"
    assert len(fake_openai.requests) == 2
    assert providers.breaker.is_open(f"primary|{fake_openai.base_url}")

    tracer = Tracer(None)
    assert providers.chain().complete(MESSAGES, role="router", tracer=tracer).provider == "fallback"
    assert len(fake_openai.requests) == 2  # skipped: not even tried
    skipped, answered = llm_steps(tracer)
    assert (skipped["provider"], skipped["error"], skipped["detail"]["skipped"]) == (
        "primary",
        "circuit open",
        "circuit open",
    )
    assert answered["provider"] == "fallback"

    time.sleep(0.35)  # half-open: one probe goes through and closes the circuit
    fake_openai.respond_with(lambda body: text("primary is back"))
    assert providers.chain().complete(MESSAGES, role="router").content == "primary is back"
    assert len(fake_openai.requests) == 3
    assert not providers.breaker.is_open(f"primary|{fake_openai.base_url}")


def test_a_failed_probe_opens_the_circuit_again(llm_settings, fake_openai):
    llm_settings.MORVO_LLM_BREAKER_THRESHOLD = 1
    llm_settings.MORVO_LLM_BREAKER_COOLDOWN_SECONDS = 0.2
    fake_openai.respond_with(lambda body: failure(502))
    with pytest.raises(ProvidersUnavailable):
        providers.chain().complete(MESSAGES, role="router")
    time.sleep(0.25)
    with pytest.raises(ProvidersUnavailable, match="HTTP 502"):
        providers.chain().complete(MESSAGES, role="router")  # the probe
    with pytest.raises(ProvidersUnavailable, match="circuit open"):
        providers.chain().complete(MESSAGES, role="router")
    assert len(fake_openai.requests) == 2


def test_all_providers_down_raises_unavailable(with_fallback, fake_openai, fake_openai_fallback):
    fake_openai.enqueue(failure(500))
    fake_openai_fallback.enqueue(failure(503))
    tracer = Tracer(None)
    with pytest.raises(ProvidersUnavailable) as raised:
        providers.chain().complete(MESSAGES, role="conversation", tracer=tracer)
    assert "primary: HTTP 500" in str(raised.value) and "fallback: HTTP 503" in str(raised.value)
    assert [step["error"][:8] for step in llm_steps(tracer)] == ["HTTP 500", "HTTP 503"]
    assert tracer.prompt_tokens == 0 and tracer.cost_usd == Decimal("0")


# -- structured output --------------------------------------------------------------------


def test_json_schema_output_is_parsed_and_validated(llm_settings, fake_openai):
    fake_openai.enqueue(text('```json\n{"intent": "greeting", "confidence": 0.9}\n```'))
    completion = providers.chain().complete(MESSAGES, role="router", json_schema=SCHEMA)
    assert completion.parsed == {"intent": "greeting", "confidence": 0.9}
    body = fake_openai.requests[0]["json"]
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and '"enum": ["greeting", "other"]' in body["messages"][0]["content"]


def test_schema_invalid_json_gets_one_repair_retry(llm_settings, fake_openai):
    fake_openai.enqueue(
        text('{"intent": "shopping", "confidence": 0.9}', prompt_tokens=100, completion_tokens=10),
        text('{"intent": "other", "confidence": 0.7}', prompt_tokens=150, completion_tokens=10),
    )
    tracer = Tracer(None)
    completion = providers.chain().complete(MESSAGES, role="router", json_schema=SCHEMA, tracer=tracer)
    assert completion.parsed == {"intent": "other", "confidence": 0.7}
    assert (completion.prompt_tokens, completion.completion_tokens) == (250, 20)
    repair = fake_openai.requests[1]["json"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"intent": "shopping", "confidence": 0.9}'}
    assert "$.intent must be one of" in repair[-1]["content"]
    assert [step["detail"].get("repair", False) for step in llm_steps(tracer)] == [False, True]


def test_still_invalid_after_the_repair_is_a_provider_failure(with_fallback, fake_openai, fake_openai_fallback):
    fake_openai.enqueue(text("not json"), text('{"intent": "greeting"}'))
    fake_openai_fallback.enqueue(text(json.dumps({"intent": "greeting", "confidence": 1})))
    completion = providers.chain().complete(MESSAGES, role="router", json_schema=SCHEMA)
    assert len(fake_openai.requests) == 2  # the answer and exactly one repair
    assert "not valid JSON" in fake_openai.requests[1]["json"]["messages"][-1]["content"]
    assert (completion.provider, completion.parsed) == ("fallback", {"intent": "greeting", "confidence": 1})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"intent": "greeting"}, "missing the required property 'confidence'"),
        ({"intent": "greeting", "confidence": 2}, "$.confidence must be at most 1"),
        ({"intent": "greeting", "confidence": True}, "$.confidence must be of type number"),
        ({"intent": "greeting", "confidence": 1, "x": 1}, "does not allow: x"),
    ],
)
def test_schema_validator_reports_the_problem(value, message):
    with pytest.raises(SchemaError) as raised:
        parse_and_validate(json.dumps(value), SCHEMA)
    assert message in str(raised.value)


def test_schema_validator_checks_items_and_nullable_types():
    schema = {
        "type": "object",
        "properties": {"labels": {"type": "array", "items": {"type": "string"}}, "name": {"type": ["string", "null"]}},
    }
    assert parse_and_validate('{"labels": ["vip"], "name": null}', schema) == {"labels": ["vip"], "name": None}
    with pytest.raises(SchemaError, match=r"\$\.labels\[1\] must be of type string"):
        parse_and_validate('{"labels": ["vip", 3]}', schema)
    with pytest.raises(SchemaError, match="one JSON object"):
        parse_and_validate("[1, 2]", schema)


# -- the fake server's wire format --------------------------------------------------------


def test_fake_streams_chunks_with_usage_and_done(fake_openai):
    fake_openai.enqueue(text("مرحبا بك في المتجر، كيف أساعدك؟", prompt_tokens=12, completion_tokens=9))
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="none", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "مرحبا بك في المتجر، كيف أساعدك؟"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.total_tokens == 21
    client.close()


def test_fake_streams_tool_calls(fake_openai):
    from tests.agents.fake_openai import tool_call

    fake_openai.enqueue(tool_call("get_product", {"product_id": 12345678}))
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="none", max_retries=0)
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    arguments = "".join(
        call.function.arguments or "" for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])
    )
    assert json.loads(arguments) == {"product_id": 12345678}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked for
    client.close()


def test_fake_computes_realistic_prompt_tokens(fake_openai):
    content = "x" * 400
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="none", max_retries=0)
    response = client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
    assert response.usage.prompt_tokens == 100
    assert response.choices[0].message.content == "OK"
    client.close()
