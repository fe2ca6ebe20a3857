"""API throttles: per token and per client address, fixed windows counted in one
statement (PostgreSQL upsert in the embedded profile, Redis ``INCR`` in the scale one).

A fixed window lets a client spend up to twice the rate across a window boundary; in
exchange a check costs one round trip and is exact across every web process.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from morvo import services


class FixedWindowRateThrottle(SimpleRateThrottle):
    _wait: float | None = None

    def get_rate(self) -> str | None:
        # Read at call time (DRF's default reads once at import), so settings overrides apply.
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES  # type: ignore[assignment]
        return rates.get(self.scope or "")

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return True
        self.num_requests, self.duration = limit, duration
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window_start = int(now // duration * duration)
        hits = services.throttle_hit(key, window_start, duration)
        self._wait = window_start + duration - now
        return hits <= limit

    def wait(self) -> float | None:
        return self._wait


class TokenRateThrottle(FixedWindowRateThrottle):
    """Per API token (per user for a signed-in session)."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.auth is not None and hasattr(request.auth, "pk"):
            return f"token:t{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"token:u{request.user.pk}"
        return None


class IPRateThrottle(FixedWindowRateThrottle):
    """Per client address, whoever is calling (anonymous callers included)."""

    scope = "ip"
    # Checked before authentication (see TenantAPIMixin), so refused callers count too.
    before_authentication = True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return f"ip:{self.get_ident(request)}"
