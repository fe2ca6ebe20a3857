"""Traces: one ``AgentRun`` per turn or job, one ``AgentStep`` per stage, LLM call, tool call
and guardrail decision.

A ``Tracer`` collects steps in memory while the turn runs (LLM calls and tools may run in
CrewAI's own threads, so it is thread-safe) and writes the run and all its steps in one go at
the end: tracing a turn costs two queries, not one per step.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents_app.prices import cost_of


class Tracer:
    def __init__(self, tenant: Any, *, kind: str = "turn", conversation: Any = None, message: Any = None) -> None:
        self.tenant = tenant
        self.kind = kind
        self.conversation = conversation
        self.message = message
        self.started_at = timezone.now()
        self._clock = time.perf_counter()
        self._lock = threading.Lock()
        self.steps: list[dict[str, Any]] = []
        self.fields: dict[str, Any] = {}

    def step(
        self,
        kind: str,
        name: str,
        *,
        provider: str = "",
        model: str = "",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency_ms: int = 0,
        detail: dict[str, Any] | None = None,
        error: str = "",
    ) -> dict[str, Any]:
        cost, input_price, output_price = (Decimal("0"), None, None)
        if kind == "llm" and model:
            cost, input_price, output_price = cost_of(model, prompt_tokens, completion_tokens)
        entry = {
            "kind": kind,
            "name": name[:100],
            "provider": provider[:60],
            "model": model[:100],
            "prompt_tokens": int(prompt_tokens or 0),
            "completion_tokens": int(completion_tokens or 0),
            "input_price_per_million": input_price,
            "output_price_per_million": output_price,
            "cost_usd": cost,
            "latency_ms": int(latency_ms),
            "detail": detail or {},
            "error": (error or "")[:2000],
            "created_at": timezone.now(),
        }
        with self._lock:
            self.steps.append(entry)
        return entry

    def stage(self, name: str) -> _Stage:
        """``with tracer.stage("analyse"):`` records the stage's latency."""
        return _Stage(self, name)

    @property
    def prompt_tokens(self) -> int:
        return sum(step["prompt_tokens"] for step in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(step["completion_tokens"] for step in self.steps)

    @property
    def cost_usd(self) -> Decimal:
        return sum((step["cost_usd"] for step in self.steps), Decimal("0"))

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self._clock) * 1000)

    def save(self, *, status: str, error: str = "", **fields: Any) -> Any:
        from agents_app.models import AgentRun, AgentStep

        with transaction.atomic():
            run = AgentRun.objects.create(
                tenant=self.tenant,
                kind=self.kind,
                conversation=self.conversation,
                message=self.message,
                status=status,
                error=error[:4000],
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                cost_usd=self.cost_usd,
                latency_ms=self.elapsed_ms(),
                started_at=self.started_at,
                finished_at=timezone.now(),
                **{**self.fields, **fields},
            )
            AgentStep.objects.bulk_create(
                [
                    AgentStep(tenant=self.tenant, run=run, position=position, **step)
                    for position, step in enumerate(self.steps)
                ]
            )
        return run


class _Stage:
    def __init__(self, tracer: Tracer, name: str) -> None:
        self.tracer = tracer
        self.name = name
        self.detail: dict[str, Any] = {}

    def __enter__(self) -> _Stage:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        self.tracer.step(
            "stage",
            self.name,
            latency_ms=int((time.perf_counter() - self._started) * 1000),
            detail=self.detail,
            error=repr(exc) if exc else "",
        )
