"""A per-process circuit breaker per provider.

Closed: calls go through. After ``threshold`` consecutive failures it opens: calls are skipped
(the chain moves on to the next provider at once instead of waiting out timeouts). After the
cool-down it is half-open: one call is let through as a probe; success closes it, failure opens
it again for another cool-down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def allow(self, key: str, *, cooldown: float) -> bool:
        with self._lock:
            state = self._states.setdefault(key, _State())
            if state.opened_at is None:
                return True
            if time.monotonic() - state.opened_at < cooldown or state.probing:
                return False
            state.probing = True  # half-open: this caller is the probe
            return True

    def record_success(self, key: str) -> None:
        with self._lock:
            self._states[key] = _State()

    def record_failure(self, key: str, *, threshold: int) -> None:
        with self._lock:
            state = self._states.setdefault(key, _State())
            state.failures += 1
            if state.probing or state.failures >= max(1, threshold):
                state.opened_at = time.monotonic()
            state.probing = False

    def is_open(self, key: str) -> bool:
        with self._lock:
            state = self._states.get(key)
            return bool(state and state.opened_at is not None)

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


breaker = CircuitBreaker()
