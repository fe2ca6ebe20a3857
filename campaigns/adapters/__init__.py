"""Ad-platform adapters and the resilience around them.

``adapter_for(tenant, platform, settings_row)`` gives a :class:`ResilientAdapter`: every call
is retried on transient failures with exponential backoff, behind a circuit breaker whose
state (consecutive failures, open until) lives in ``AdapterCircuit`` so every worker of the
tenant sees it. Retries, backoff, threshold and cool-down come from settings
(``CAMPAIGNS_ADAPTER_*``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from campaigns.adapters.base import (
    AdapterError,
    AdPlatformAdapter,
    CircuitOpenError,
    MetricRecord,
    PermanentAdapterError,
)
from campaigns.models import AdapterCircuit, Platform

if TYPE_CHECKING:
    from campaigns.models import AutopilotSettings
    from morvo.models import Tenant

__all__ = [
    "AdPlatformAdapter",
    "AdapterError",
    "CircuitOpenError",
    "MetricRecord",
    "PermanentAdapterError",
    "ResilientAdapter",
    "adapter_for",
]

logger = logging.getLogger(__name__)

# Tests replace this to observe the backoff without waiting.
sleep: Callable[[float], None] = time.sleep


def build_adapter(platform: str, autopilot: AutopilotSettings) -> AdPlatformAdapter:
    if platform == Platform.IMPACT:
        from campaigns.adapters.impact import ImpactAdapter

        return ImpactAdapter(
            autopilot.impact_base_url,
            autopilot.impact_account_sid,
            autopilot.impact_auth_token,
            timeout=float(settings.CAMPAIGNS_ADAPTER_TIMEOUT_SECONDS),
        )
    from campaigns.adapters.manual import ManualAdapter

    return ManualAdapter()


class ResilientAdapter:
    """Wraps an adapter: retries with backoff, and a circuit breaker shared through the database."""

    def __init__(self, tenant: Tenant, platform: str, autopilot: AutopilotSettings) -> None:
        self.tenant = tenant
        self.platform = platform
        self.autopilot = autopilot
        self._inner: AdPlatformAdapter | None = None
        self._circuit: AdapterCircuit | None = None

    @property
    def inner(self) -> AdPlatformAdapter:
        if self._inner is None:
            self._inner = build_adapter(self.platform, self.autopilot)
        return self._inner

    def _load_circuit(self) -> AdapterCircuit:
        if self._circuit is None:
            self._circuit, _ = AdapterCircuit.objects.for_tenant(self.tenant).get_or_create(
                tenant=self.tenant, platform=self.platform
            )
        return self._circuit

    def is_open(self) -> bool:
        circuit = self._load_circuit()
        return circuit.open_until is not None and circuit.open_until > timezone.now()

    def _record_success(self) -> None:
        circuit = self._load_circuit()
        if circuit.failures or circuit.open_until:
            AdapterCircuit.objects.for_tenant(self.tenant).filter(pk=circuit.pk).update(
                failures=0, open_until=None, last_error="", updated_at=timezone.now()
            )
            circuit.failures, circuit.open_until, circuit.last_error = 0, None, ""

    def _record_failure(self, error: Exception) -> None:
        circuit = self._load_circuit()
        failures = circuit.failures + 1
        open_until = circuit.open_until
        if failures >= settings.CAMPAIGNS_CIRCUIT_FAILURE_THRESHOLD:
            open_until = timezone.now() + timedelta(seconds=settings.CAMPAIGNS_CIRCUIT_COOLDOWN_SECONDS)
        AdapterCircuit.objects.for_tenant(self.tenant).filter(pk=circuit.pk).update(
            failures=failures, open_until=open_until, last_error=str(error)[:1000], updated_at=timezone.now()
        )
        circuit.failures, circuit.open_until, circuit.last_error = failures, open_until, str(error)[:1000]

    def _attempts(self, method: str, *args: Any) -> Any:
        """The call with its retries; touches no database (it may run in a worker thread)."""
        attempts = max(1, int(settings.CAMPAIGNS_ADAPTER_ATTEMPTS))
        delay = float(settings.CAMPAIGNS_ADAPTER_BACKOFF_SECONDS)
        for attempt in range(1, attempts + 1):
            try:
                return getattr(self.inner, method)(*args)
            except AdapterError as error:
                if not error.transient or attempt == attempts:
                    raise
                logger.warning("%s %s failed (attempt %s/%s): %s", self.platform, method, attempt, attempts, error)
                sleep(delay * (2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, *args: Any) -> Any:
        """One call through the breaker: refused while open; after the cool-down one trial
        call goes through (half-open) and closes or re-opens the circuit."""
        if self.is_open():
            raise CircuitOpenError(f"The {self.platform} platform is unavailable; calls resume later.")
        try:
            result = self._attempts(method, *args)
        except AdapterError as error:
            if error.transient:
                self._record_failure(error)
            raise
        self._record_success()
        return result

    def call_many(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Several independent calls, ``CAMPAIGNS_ADAPTER_CONCURRENCY`` at a time; each
        answer is its result or the :class:`AdapterError` it raised. The breaker is checked
        once before and updated once after, in this thread."""
        if not calls:
            return []
        if self.is_open():
            error = CircuitOpenError(f"The {self.platform} platform is unavailable; calls resume later.")
            return [error for _ in calls]
        inner = self.inner  # built here, not in the pool

        def one(call: tuple[str, tuple[Any, ...]]) -> Any:
            try:
                return self._attempts(call[0], *call[1])
            except AdapterError as error:
                return error

        workers = max(1, int(settings.CAMPAIGNS_ADAPTER_CONCURRENCY))
        if workers == 1 or len(calls) == 1 or not inner.concurrent:
            answers = [one(call) for call in calls]
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
                answers = list(pool.map(one, calls))
        transient = [answer for answer in answers if isinstance(answer, AdapterError) and answer.transient]
        if transient:
            self._record_failure(transient[-1])
        elif any(not isinstance(answer, AdapterError) for answer in answers):
            self._record_success()
        return answers

    def flush(self) -> None:
        if self._inner is not None:
            self._inner.flush()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def adapter_for(tenant: Tenant, platform: str, autopilot: AutopilotSettings) -> ResilientAdapter:
    return ResilientAdapter(tenant, platform, autopilot)
