from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from morvo import services
from morvo.api.serializers import MeSerializer, TenantSerializer
from morvo.api.views import TenantAPIView


class MeView(TenantAPIView):
    """Who is calling: the user, the tenant the token (or session) works in, and the role there."""

    serializer_class = MeSerializer

    def get(self, request: Request) -> Response:
        membership = request._request.membership  # type: ignore[attr-defined]
        data = {"user": request.user, "tenant": self.tenant, "role": membership.role}
        return Response(MeSerializer(data).data)


class TenantView(TenantAPIView):
    """The caller's tenant. Owners and admins may change its profile."""

    serializer_class = TenantSerializer

    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(self.tenant).data)

    @extend_schema(request=TenantSerializer, responses=TenantSerializer)
    def patch(self, request: Request) -> Response:
        serializer = TenantSerializer(self.tenant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_update(self.tenant, **serializer.validated_data)
        return Response(TenantSerializer(tenant).data)
