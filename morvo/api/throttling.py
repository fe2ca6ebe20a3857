from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # Read at call time (DRF's default reads once at import), so settings overrides apply.
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES  # type: ignore[assignment]
        return rates.get(self.scope or "")


class TokenRateThrottle(_SettingsRateThrottle):
    """Per API token (per user and tenant for a signed-in session)."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.auth is not None and hasattr(request.auth, "pk"):
            ident = f"t{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IPRateThrottle(_SettingsRateThrottle):
    """Per client address, whoever is calling (anonymous callers included)."""

    scope = "ip"
    # Checked before authentication (see TenantAPIMixin), so refused callers count too.
    before_authentication = True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
