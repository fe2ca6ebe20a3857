"""OpenAI-compatible providers in a chain: the primary first, then the fallback.

Each provider is the ``openai`` client pointed at a base URL, with the client's own retries off:
retries are ours (exponential backoff with jitter, only for timeouts, connection errors, 429 and
5xx), so every attempt is traced and the circuit breaker sees every outcome. When every provider
fails, or none is configured, ``ProvidersUnavailable`` is raised and the pipeline answers with
the offline brain.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from agents_app.providers.breaker import breaker
from agents_app.providers.schema import SchemaError, parse_and_validate

if TYPE_CHECKING:
    from agents_app.tracing import Tracer

OPENAI_BASE_URL = "https://api.openai.com/v1"
ROLES = ("router", "conversation", "specialists")
# Other names the brain uses for a role: the cheap model classifies and extracts, the
# conversation model answers customers, the strong model writes for the companion.
ROLE_ALIASES = {
    "extraction": "router",
    "classify": "router",
    "crm": "conversation",
    "specialist": "specialists",
    "companion": "specialists",
}
MAX_BACKOFF_SECONDS = 8.0


class ProvidersUnavailable(Exception):
    """No configured provider could answer; the offline brain takes over."""


@dataclass(frozen=True)
class Completion:
    content: str
    parsed: dict[str, Any] | None
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    api_key: str
    models: dict[str, str]
    timeout: float
    retries: int
    backoff: float
    breaker_threshold: int
    breaker_cooldown: float

    @property
    def key(self) -> str:
        return f"{self.name}|{self.base_url}"

    def model_for(self, role: str) -> str:
        return self.models[canonical_role(role)]


class _AttemptFailed(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def canonical_role(role: str) -> str:
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        raise ValueError(f"unknown LLM role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def _models(prefix: str, defaults: dict[str, str] | None = None) -> dict[str, str]:
    fallback = {"router": "gpt-4o-mini", "conversation": "gpt-4o-mini", "specialists": "gpt-4o"}
    base = defaults or fallback
    return {role: (getattr(settings, f"{prefix}_{role.upper()}", "") or base[role]) for role in ROLES}


def providers() -> list[Provider]:
    """The configured providers, primary first. A base URL without a key (a local server)
    counts; its key is sent as "none"."""
    common: dict[str, Any] = {
        "timeout": float(getattr(settings, "MORVO_LLM_TIMEOUT_SECONDS", 30.0)),
        "retries": int(getattr(settings, "MORVO_LLM_RETRIES", 2)),
        "backoff": float(getattr(settings, "MORVO_LLM_BACKOFF_SECONDS", 0.5)),
        "breaker_threshold": int(getattr(settings, "MORVO_LLM_BREAKER_THRESHOLD", 5)),
        "breaker_cooldown": float(getattr(settings, "MORVO_LLM_BREAKER_COOLDOWN_SECONDS", 60.0)),
    }
    found: list[Provider] = []
    base_url = getattr(settings, "OPENAI_BASE_URL", "") or ""
    api_key = getattr(settings, "OPENAI_API_KEY", "") or ""
    primary_models = _models("MORVO_LLM_MODEL")
    if base_url or api_key:
        found.append(
            Provider(
                name="primary",
                base_url=(base_url or OPENAI_BASE_URL).rstrip("/"),
                api_key=api_key or "none",
                models=primary_models,
                **common,
            )
        )
    fallback_url = getattr(settings, "MORVO_LLM_FALLBACK_BASE_URL", "") or ""
    fallback_key = getattr(settings, "MORVO_LLM_FALLBACK_API_KEY", "") or ""
    if fallback_url or fallback_key:
        found.append(
            Provider(
                name="fallback",
                base_url=(fallback_url or OPENAI_BASE_URL).rstrip("/"),
                api_key=fallback_key or "none",
                models=_models("MORVO_LLM_FALLBACK_MODEL", primary_models),
                **common,
            )
        )
    return found


def configured() -> bool:
    """True when a primary provider has a base URL or a key."""
    return bool(getattr(settings, "OPENAI_BASE_URL", "") or getattr(settings, "OPENAI_API_KEY", ""))


def role_config(role: str) -> list[dict[str, Any]]:
    """``base_url``, ``api_key`` and ``model`` for ``role``: the primary, then the fallback."""
    return [
        {
            "name": provider.name,
            "base_url": provider.base_url,
            "api_key": provider.api_key,
            "model": provider.model_for(role),
            "timeout": provider.timeout,
            "retries": provider.retries,
            "breaker_key": provider.key,
        }
        for provider in providers()
    ]


def provider_label(base_url: str) -> str:
    """A short, secret-free name for a base URL in traces (its host)."""
    return urlsplit(base_url).netloc or base_url


_clients: dict[tuple[str, str, float], Any] = {}
_clients_lock = threading.Lock()


def _client(provider: Provider) -> Any:
    """One ``openai.OpenAI`` per provider per process: it holds a pool of connections."""
    key = (provider.base_url, provider.api_key, provider.timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import openai

            client = openai.OpenAI(
                base_url=provider.base_url, api_key=provider.api_key, timeout=provider.timeout, max_retries=0
            )
            _clients[key] = client
        return client


def reset() -> None:
    """Forget the process's clients and circuit states (tests, and after settings change)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
    breaker.reset()


def _classify(exc: Exception) -> _AttemptFailed:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return _AttemptFailed(f"timeout: {exc}", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return _AttemptFailed(f"connection error: {exc}", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return _AttemptFailed(f"HTTP {status}: {exc.message}"[:500], retryable=status == 429 or status >= 500)
    return _AttemptFailed(f"{type(exc).__name__}: {exc}"[:500], retryable=False)


@dataclass
class ProviderChain:
    providers: list[Provider] = field(default_factory=list)
    sleep: Any = time.sleep

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        role: str,
        json_schema: dict[str, Any] | None = None,
        tracer: Tracer | None = None,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> Completion:
        role = canonical_role(role)
        if not self.providers:
            raise ProvidersUnavailable("no LLM provider is configured")
        errors: list[str] = []
        for provider in self.providers:
            model = provider.model_for(role)
            if not breaker.allow(provider.key, cooldown=provider.breaker_cooldown):
                errors.append(f"{provider.name}: circuit open")
                if tracer is not None:
                    tracer.step(
                        "llm",
                        role,
                        provider=provider.name,
                        model=model,
                        detail={"skipped": "circuit open", "host": provider_label(provider.base_url)},
                        error="circuit open",
                    )
                continue
            try:
                completion = self._complete_with(
                    provider, model, role, messages, json_schema, tracer, temperature, max_tokens
                )
            except _AttemptFailed as exc:
                breaker.record_failure(provider.key, threshold=provider.breaker_threshold)
                errors.append(f"{provider.name}: {exc}")
                continue
            except BaseException:
                breaker.record_failure(provider.key, threshold=provider.breaker_threshold)
                raise
            breaker.record_success(provider.key)
            return completion
        raise ProvidersUnavailable("; ".join(errors))

    def _complete_with(
        self,
        provider: Provider,
        model: str,
        role: str,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None,
        tracer: Tracer | None,
        temperature: float,
        max_tokens: int | None,
    ) -> Completion:
        started = time.perf_counter()
        conversation = list(messages)
        if json_schema is not None:
            conversation.insert(
                0,
                {
                    "role": "system",
                    "content": "Reply with one JSON object, and nothing else, that matches this JSON schema:\n"
                    + json.dumps(json_schema, ensure_ascii=False),
                },
            )
        totals = [0, 0]
        content = self._call(provider, model, role, conversation, json_schema, tracer, temperature, max_tokens, totals)
        parsed = None
        if json_schema is not None:
            try:
                parsed = parse_and_validate(content, json_schema)
            except SchemaError as problem:
                # One repair: show the model its answer and what is wrong with it.
                repair = [
                    *conversation,
                    {"role": "assistant", "content": content},
                    {
                        "role": "user",
                        "content": f"That reply is invalid: {problem}. "
                        "Reply again with only the corrected JSON object.",
                    },
                ]
                content = self._call(
                    provider, model, role, repair, json_schema, tracer, temperature, max_tokens, totals, repair=True
                )
                try:
                    parsed = parse_and_validate(content, json_schema)
                except SchemaError as still:
                    if tracer is not None:
                        tracer.step(
                            "guard",
                            "schema",
                            provider=provider.name,
                            model=model,
                            error=f"invalid after repair: {still}",
                        )
                    raise _AttemptFailed(
                        f"invalid structured output after one repair: {still}", retryable=False
                    ) from still
        return Completion(
            content=content,
            parsed=parsed,
            provider=provider.name,
            model=model,
            prompt_tokens=totals[0],
            completion_tokens=totals[1],
            latency_ms=int((time.perf_counter() - started) * 1000),
        )

    def _call(
        self,
        provider: Provider,
        model: str,
        role: str,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None,
        tracer: Tracer | None,
        temperature: float,
        max_tokens: int | None,
        totals: list[int],
        *,
        repair: bool = False,
    ) -> str:
        """One request with our retries; returns the reply's text or raises ``_AttemptFailed``."""
        request: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
        if max_tokens:
            request["max_tokens"] = max_tokens
        if json_schema is not None:
            request["response_format"] = {"type": "json_object"}
        client = _client(provider)
        attempts = 1 + max(0, provider.retries)
        for attempt in range(attempts):
            started = time.perf_counter()
            detail: dict[str, Any] = {"attempt": attempt + 1, "host": provider_label(provider.base_url)}
            if repair:
                detail["repair"] = True
            try:
                response = client.chat.completions.create(**request)
                if not getattr(response, "choices", None):
                    raise _AttemptFailed("the response has no choices", retryable=False)
                content = response.choices[0].message.content or ""
            except Exception as exc:
                failure = exc if isinstance(exc, _AttemptFailed) else _classify(exc)
                if tracer is not None:
                    tracer.step(
                        "llm",
                        role,
                        provider=provider.name,
                        model=model,
                        latency_ms=int((time.perf_counter() - started) * 1000),
                        detail=detail,
                        error=str(failure),
                    )
                if not failure.retryable or attempt + 1 >= attempts:
                    raise failure from exc
                delay = min(MAX_BACKOFF_SECONDS, provider.backoff * (2**attempt)) * (0.5 + random.random())  # noqa: S311
                self.sleep(delay)
                continue
            usage = getattr(response, "usage", None)
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            totals[0] += prompt_tokens
            totals[1] += completion_tokens
            if tracer is not None:
                tracer.step(
                    "llm",
                    role,
                    provider=provider.name,
                    model=getattr(response, "model", None) or model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_ms=int((time.perf_counter() - started) * 1000),
                    detail=detail,
                )
            return content
        raise _AttemptFailed("no attempt was made", retryable=False)  # unreachable: attempts >= 1


def chain() -> ProviderChain:
    """The provider chain from settings (cheap to build; clients are shared per process)."""
    return ProviderChain(providers=providers())
