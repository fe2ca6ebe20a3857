from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from morvo import selectors
from morvo.models import ApiToken, Membership

# last_used_at is informative; writing it on every call would cost a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_authenticate(raw_key: str) -> tuple[ApiToken, Membership] | None:
    """Shared by the REST API and the websocket middleware."""
    found = selectors.api_token_by_key(raw_key)
    if found is None:
        return None
    token, membership = found
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token, membership


class TenantTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>``. The token names both the user and the tenant."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header: expected 'Token <key>'."))
        try:
            raw_key = header[1].decode()
        except UnicodeError as error:
            raise exceptions.AuthenticationFailed(_("Invalid token header.")) from error
        found = token_authenticate(raw_key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        token, membership = found
        request._request.tenant = token.tenant  # type: ignore[attr-defined]
        request._request.membership = membership  # type: ignore[attr-defined]
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """A signed-in user of the pages, in the tenant selected there (CSRF enforced)."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None or getattr(request._request, "tenant", None) is None:
            return None
        return result


class TenantTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    """Documents :class:`TenantTokenAuthentication` as the ``tokenAuth`` scheme of the schema
    (the same definition as ``SPECTACULAR_SETTINGS["APPEND_COMPONENTS"]``)."""

    target_class = TenantTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization"}

    def get_security_requirement(self, auto_schema: Any) -> Any:
        # SPECTACULAR_SETTINGS["SECURITY"] already requires tokenAuth on every operation;
        # naming it here too would list it twice.
        return None


class TenantSessionScheme(SessionScheme):  # type: ignore[misc]
    """drf-spectacular's session scheme matches only SessionAuthentication itself."""

    target_class = "morvo.api.authentication.TenantSessionAuthentication"
