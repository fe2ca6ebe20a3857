"""The API's base classes. Every Morvo API view derives from these."""

from __future__ import annotations

from typing import Any

from rest_framework import generics, mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from morvo import tenancy


class TenantAPIMixin:
    """Makes the caller's tenant (from the token, or the session) active for the view.

    Views read through ``self.tenant``; querysets come from ``get_queryset`` which is always
    scoped to it, so another tenant's object is a 404, the same answer as a missing one.
    """

    request: Any
    _tenant_token: Any = None

    @property
    def tenant(self) -> Any:
        return getattr(self.request._request, "tenant", None)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # authenticates, checks permissions
        self._tenant_token = tenancy.activate(self.tenant)

    def perform_authentication(self, request: Request) -> None:
        # DRF checks throttles after authentication and permissions, so a caller refused there
        # (no key, a guessed key) would never be throttled. Throttles that need no identity
        # (``before_authentication``) run first and count refused attempts too.
        self._check_throttles(request, before_authentication=True)
        super().perform_authentication(request)  # type: ignore[misc]

    def check_throttles(self, request: Request) -> None:
        self._check_throttles(request, before_authentication=False)

    def _check_throttles(self, request: Request, *, before_authentication: bool) -> None:
        durations = [
            throttle.wait()
            for throttle in self.get_throttles()  # type: ignore[attr-defined]
            if getattr(throttle, "before_authentication", False) is before_authentication
            and not throttle.allow_request(request, self)
        ]
        if durations:
            known = [duration for duration in durations if duration is not None]
            self.throttled(request, max(known, default=None))  # type: ignore[attr-defined]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if self._tenant_token is not None:
            tenancy.deactivate(self._tenant_token)
            self._tenant_token = None
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class TenantModelViewSet(TenantAPIMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Model viewset whose queryset is ``model.objects.for_tenant(tenant)``."""

    model: Any = None

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular builds the schema with no request and no tenant; it only needs
            # the model (to type the ``{id}`` path parameter), never the rows.
            return self.model.objects.all_tenants().none()
        return self.model.objects.for_tenant(self.tenant)


class TenantReadOnlyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantModelViewSet):
    pass


class TenantAPIView(TenantAPIMixin, generics.GenericAPIView):  # type: ignore[type-arg]
    pass
