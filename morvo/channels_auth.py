"""Websocket authentication: the tenant is set once, here, for the socket's lifetime."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.http.request import validate_host

from morvo import selectors, tenancy
from morvo.api.authentication import token_authenticate
from morvo.middleware import SESSION_TENANT_KEY


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _raw_token(scope: dict[str, Any]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode())
    if query.get("token"):
        return query["token"][0]
    authorization = _header(scope, b"authorization")
    if authorization and authorization.lower().startswith("token "):
        return authorization.split(None, 1)[1].strip()
    return None


def _resolve_sync(scope: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(user, tenant, membership) for this socket, or Nones."""
    raw = _raw_token(scope)
    if raw is not None:
        found = token_authenticate(raw)
        if found is None:
            return None, None, None
        token, membership = found
        return token.user, token.tenant, membership
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None, None, None
    session = scope.get("session")
    preferred = session.get(SESSION_TENANT_KEY) if session is not None else None
    active = selectors.membership_active(user, preferred)
    if active is None:
        return user, None, None
    return user, active.tenant, active


# Not thread-sensitive: handshakes authenticate in parallel threads (each with a pooled
# connection) instead of queueing on the one thread Django keeps for request code.
_resolve = database_sync_to_async(_resolve_sync, thread_sensitive=False)


class TenantMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        user, tenant, membership = await _resolve(scope)
        if user is not None:
            scope["user"] = user
        scope["tenant"] = tenant
        scope["membership"] = membership
        with tenancy.tenant_context(tenant):
            return await super().__call__(scope, receive, send)


class OriginValidator(BaseMiddleware):
    """Refuse browser handshakes from origins that are not ours.

    Browsers always send ``Origin`` on a websocket handshake, so a handshake without one
    comes from a program (an integrator with a token), which cannot ride a visitor's
    cookies: those are allowed through to authentication.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if origin is not None:
            host = urlsplit(origin).netloc.rsplit("@", 1)[-1]
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            allowed = list(settings.ALLOWED_HOSTS) + list(getattr(settings, "WEBSOCKET_EXTRA_ORIGINS", []))
            if not (validate_host(host, allowed) or validate_host(hostname, allowed)):
                await send({"type": "websocket.close", "code": 4403})
                return None
        return await super().__call__(scope, receive, send)


def websocket_stack(inner: Any) -> Any:
    return OriginValidator(AuthMiddlewareStack(TenantMiddleware(inner)))
