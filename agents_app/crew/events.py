"""Per-call LLM accounting from crewai's events, for one kickoff only.

crewai's event bus is one per process and its handlers see every crew's events, so
``scoped_handlers()`` (which swaps the whole handler table) is unsafe while other turns run in
other threads. Instead a ``KickoffMeter`` registers its own handlers for the duration of one
kickoff and keeps only the events whose source is one of the LLM objects built for that kickoff
(or whose agent is one of its agents). Tokens come from each ``LLMCallCompletedEvent``'s
``usage``, never from ``CrewOutput.token_usage`` (which over-counts when agents share an LLM
and accumulates across kickoffs).
"""

from __future__ import annotations

import threading
from typing import Any


class KickoffMeter:
    def __init__(self, *, tracer: Any, role_of: dict[int, str], provider: str) -> None:
        """``role_of`` maps ``id(llm)`` of this kickoff's LLMs to the role each serves."""
        self.tracer = tracer
        self.role_of = role_of
        self.provider = provider
        self.agent_ids: set[str] = set()
        self._lock = threading.Lock()
        self._started: dict[str, Any] = {}
        self._untimed: list[tuple[str, Any, dict[str, Any] | None]] = []
        self.calls: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._handlers: list[tuple[type, Any]] = []

    # -- filtering ------------------------------------------------------------------------

    def _mine(self, source: Any, event: Any) -> bool:
        return id(source) in self.role_of or (getattr(event, "agent_id", None) or "") in self.agent_ids

    # -- handlers -------------------------------------------------------------------------

    def _on_started(self, source: Any, event: Any) -> None:
        if self._mine(source, event):
            with self._lock:
                self._started[event.call_id] = event.timestamp

    def _on_completed(self, source: Any, event: Any) -> None:
        if not self._mine(source, event):
            return
        usage = event.usage or {}
        with self._lock:
            started = self._started.pop(event.call_id, None)
        latency_ms = int((event.timestamp - started).total_seconds() * 1000) if started else 0
        call = {
            "role": self.role_of.get(id(source), "specialists"),
            "model": event.model or getattr(source, "model", ""),
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "latency_ms": latency_ms,
            "agent": getattr(event, "agent_role", None) or "",
            "task": (getattr(event, "task_name", None) or "")[:120],
            "call_type": getattr(event.call_type, "value", str(event.call_type)),
            "finish_reason": event.finish_reason or "",
        }
        entry = None
        if self.tracer is not None:
            entry = self.tracer.step(
                "llm",
                f"crew:{call['role']}",
                provider=self.provider,
                model=call["model"],
                prompt_tokens=call["prompt_tokens"],
                completion_tokens=call["completion_tokens"],
                latency_ms=latency_ms,
                detail={
                    "agent": call["agent"],
                    "task": call["task"],
                    "call_type": call["call_type"],
                    "finish_reason": call["finish_reason"],
                },
            )
        with self._lock:
            self.calls.append(call)
            if started is None:  # the started event's handler has not run yet (another thread)
                self._untimed.append((event.call_id, event.timestamp, entry))

    def _on_failed(self, source: Any, event: Any) -> None:
        if not self._mine(source, event):
            return
        with self._lock:
            started = self._started.pop(event.call_id, None)
            self.failures.append(event.error)
        if self.tracer is not None:
            self.tracer.step(
                "llm",
                f"crew:{self.role_of.get(id(source), 'specialists')}",
                provider=self.provider,
                model=event.model or getattr(source, "model", ""),
                latency_ms=int((event.timestamp - started).total_seconds() * 1000) if started else 0,
                detail={"agent": getattr(event, "agent_role", None) or ""},
                error=event.error[:2000],
            )

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> KickoffMeter:
        from crewai.events.event_bus import crewai_event_bus
        from crewai.events.types.llm_events import LLMCallCompletedEvent, LLMCallFailedEvent, LLMCallStartedEvent

        self._handlers = [
            (LLMCallStartedEvent, self._on_started),
            (LLMCallCompletedEvent, self._on_completed),
            (LLMCallFailedEvent, self._on_failed),
        ]
        for event_type, handler in self._handlers:
            crewai_event_bus.register_handler(event_type, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        from crewai.events.event_bus import crewai_event_bus

        # Handlers run on the bus's own threads: wait for this kickoff's to finish before
        # the turn reads the totals, then unregister.
        crewai_event_bus.flush(timeout=10.0)
        for event_type, handler in self._handlers:
            crewai_event_bus.off(event_type, handler)
        self._handlers = []
        with self._lock:
            for call_id, finished, entry in self._untimed:
                started = self._started.pop(call_id, None)
                if started is not None and entry is not None:
                    entry["latency_ms"] = int((finished - started).total_seconds() * 1000)
            self._untimed.clear()

    @property
    def prompt_tokens(self) -> int:
        return sum(call["prompt_tokens"] for call in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(call["completion_tokens"] for call in self.calls)
