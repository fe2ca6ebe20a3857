from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware import common as django_common

from morvo import selectors, tenancy

SESSION_TENANT_KEY = "morvo_tenant_id"


class TenantMiddleware:
    """Sets ``request.tenant`` and ``request.membership`` once, from the user's membership
    and the tenant they selected, and makes that tenant active for the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership = selectors.membership_active(request.user, request.session.get(SESSION_TENANT_KEY))
        request.membership = membership  # type: ignore[attr-defined]
        request.tenant = membership.tenant if membership else None  # type: ignore[attr-defined]
        token = tenancy.activate(request.tenant)  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            tenancy.deactivate(token)


class CommonMiddleware(django_common.CommonMiddleware):
    """Django's, except that the API never answers a 404 with a redirect to the
    slash-terminated path: an API client must see the 404."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/"):
            return False
        return super().should_redirect_with_slash(request)
