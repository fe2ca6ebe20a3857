from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware import common as django_common

from morvo import selectors, tenancy
from morvo.models import Tenant

SESSION_TENANT_KEY = "morvo_tenant_id"


class TenantMiddleware:
    """Sets ``request.tenant`` and ``request.membership`` once, from the user's membership
    and the tenant they selected, and makes that tenant active for the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        preferred = request.session.get(SESSION_TENANT_KEY)
        membership = selectors.membership_active(request.user, preferred)
        tenant = membership.tenant if membership else None
        if request.user.is_superuser and preferred is not None and (tenant is None or tenant.pk != preferred):
            # Superusers may step into any tenant (the back office's switcher) without a
            # membership there; the API still requires one.
            tenant = Tenant.objects.filter(pk=preferred, is_active=True).first() or tenant
            membership = membership if membership and tenant and membership.tenant_id == tenant.pk else None
        request.membership = membership  # type: ignore[attr-defined]
        request.tenant = tenant  # type: ignore[attr-defined]
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
