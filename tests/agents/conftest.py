"""Fixtures for the brain's tests: fake OpenAI-compatible servers on 127.0.0.1 and settings that
point the providers at them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agents.fake_openai import FakeOpenAI

# crewai writes a SQLite file with task inputs and outputs on every kickoff: keep the suite's
# out of var/ (set before anything imports crewai).
os.environ["CREWAI_STORAGE_DIR"] = tempfile.mkdtemp(prefix="morvo-test-crewai-")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_openai_fallback() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


def _reset_providers() -> None:
    from agents_app.crew import llm as crew_llm
    from agents_app.providers import reset

    reset()
    with crew_llm._clients_lock:
        for client in crew_llm._clients.values():
            client.close()
        crew_llm._clients.clear()


@pytest.fixture
def llm_settings(settings: Any, fake_openai: FakeOpenAI) -> Iterator[Any]:
    """The primary provider is ``fake_openai`` (no key: a local server); no fallback; quick
    timeouts and backoff; a fresh circuit breaker."""
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.OPENAI_API_KEY = ""
    settings.MORVO_LLM_MODEL_ROUTER = "gpt-4o-mini"
    settings.MORVO_LLM_MODEL_CONVERSATION = "gpt-4o-mini"
    settings.MORVO_LLM_MODEL_SPECIALISTS = "gpt-4o-mini"
    settings.MORVO_LLM_FALLBACK_BASE_URL = ""
    settings.MORVO_LLM_FALLBACK_API_KEY = ""
    settings.MORVO_LLM_FALLBACK_MODEL_ROUTER = ""
    settings.MORVO_LLM_FALLBACK_MODEL_CONVERSATION = ""
    settings.MORVO_LLM_FALLBACK_MODEL_SPECIALISTS = ""
    settings.MORVO_LLM_TIMEOUT_SECONDS = 5.0
    settings.MORVO_LLM_RETRIES = 0
    settings.MORVO_LLM_BACKOFF_SECONDS = 0.01
    settings.MORVO_LLM_BREAKER_THRESHOLD = 5
    settings.MORVO_LLM_BREAKER_COOLDOWN_SECONDS = 60.0
    settings.MORVO_LLM_PRICES = ""
    _reset_providers()
    yield settings
    _reset_providers()


@pytest.fixture
def with_fallback(llm_settings: Any, fake_openai_fallback: FakeOpenAI) -> Any:
    llm_settings.MORVO_LLM_FALLBACK_BASE_URL = fake_openai_fallback.base_url
    llm_settings.MORVO_LLM_FALLBACK_API_KEY = "fallback-key"
    llm_settings.MORVO_LLM_FALLBACK_MODEL_ROUTER = "gpt-4.1-nano"
    llm_settings.MORVO_LLM_FALLBACK_MODEL_SPECIALISTS = "gpt-4.1-mini"
    llm_settings.MORVO_LLM_FALLBACK_MODEL_CONVERSATION = "gpt-4.1-mini"
    return llm_settings
