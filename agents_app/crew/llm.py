"""CrewAI's native OpenAI provider, pointed at Morvo's configured providers.

``build_llm`` makes one LLM for one kickoff: the base URL, key and model of a provider from
``agents_app.providers.role_config``, our timeout and retries (the ``openai`` client's own,
exponential with jitter, for timeouts, 429 and 5xx), the real context window for models crewai
does not know, and a shared client whose transport clocks the time spent inside LLM requests
(so the crew's own overhead can be told apart from the model's time).
"""

from __future__ import annotations

import contextvars
import threading
import time
from functools import cache
from typing import Any

from django.conf import settings


class HttpClock:
    """Seconds spent inside LLM HTTP requests, summed over every thread of one kickoff."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.requests = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.requests += 1

    @property
    def milliseconds(self) -> int:
        return int(self.seconds * 1000)


# The kickoff whose requests are being clocked. crewai runs the calls in the kickoff's thread
# (through asyncio.run, which carries the context along) so a context variable finds it.
current_clock: contextvars.ContextVar[HttpClock | None] = contextvars.ContextVar("morvo_llm_clock", default=None)


@cache
def _classes() -> tuple[type, type]:
    import httpx
    from crewai.llms.context_window import OPENAI_CONTEXT_WINDOWS, resolve_context_window_size
    from crewai.llms.providers.openai.completion import OpenAICompletion
    from pydantic import model_validator

    class MorvoOpenAI(OpenAICompletion):  # type: ignore[misc]
        """The native provider with the context window of models crewai's catalogue lacks
        (self-hosted ones), instead of its 8k default that summarises early, and with the
        process's shared client instead of two new ones per instance."""

        context_window: int = 128000

        @model_validator(mode="after")
        def _init_clients(self) -> MorvoOpenAI:
            return self  # build_llm gives the shared client; the async one is built if ever used

        def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
            """crewai checks the context window before every call; against OpenAI itself the
            native provider asks its token-count endpoint (one more round trip per call), and
            elsewhere it logs a warning each time. Four characters a token is close enough
            for a check against a 15% margin."""
            if isinstance(messages, str):
                characters = len(messages)
            else:
                characters = sum(len(str(message.get("content") or "")) for message in messages)
            if tools:
                characters += len(str(tools))
            return (characters + 3) // 4

        def get_context_window_size(self) -> int:
            return resolve_context_window_size(self.model, OPENAI_CONTEXT_WINDOWS, default=self.context_window)

    class ClockedTransport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            clock = current_clock.get()
            started = time.perf_counter()
            try:
                response = super().handle_request(request)
                response.read()  # the body is part of the model's time
                return response
            finally:
                if clock is not None:
                    clock.add(time.perf_counter() - started)

    return MorvoOpenAI, ClockedTransport


_clients: dict[tuple[str, str, float, int], Any] = {}
_clients_lock = threading.Lock()


def _shared_client(base_url: str, api_key: str, timeout: float, retries: int) -> Any:
    """One ``openai.OpenAI`` per provider per process, on a clocked transport: its pool of
    connections (and TLS sessions) outlives the kickoff."""
    key = (base_url, api_key, timeout, retries)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import httpx
            import openai

            _, transport_class = _classes()
            http_client = httpx.Client(transport=transport_class(), timeout=timeout)
            client = openai.OpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=retries, http_client=http_client
            )
            _clients[key] = client
        return client


def build_llm(config: dict[str, Any], *, temperature: float = 0.3) -> Any:
    """An LLM for one kickoff from one ``role_config`` entry."""
    llm_class, _ = _classes()
    timeout = float(config.get("timeout") or settings.MORVO_LLM_TIMEOUT_SECONDS)
    retries = int(config.get("retries", settings.MORVO_LLM_RETRIES))
    api_key = config["api_key"] or "none"
    llm = llm_class(
        model=config["model"],
        base_url=config["base_url"],
        api_key=api_key,
        timeout=timeout,
        max_retries=retries,
        temperature=temperature,
        context_window=int(getattr(settings, "MORVO_LLM_CONTEXT_WINDOW", 128000)),
    )
    llm._client = _shared_client(config["base_url"], api_key, timeout, retries)
    return llm
