"""The brain's REST API: the router's reading of a text, and the traces of runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from agents_app import services
from agents_app.api.serializers import AgentRunSerializer, AnalysisSerializer, AnalyzeRequestSerializer
from agents_app.models import AgentRun, AgentStep
from morvo.api.views import TenantAPIView, TenantReadOnlyViewSet


class AnalyzeView(TenantAPIView):
    """Language, intent, priority, sentiment, confidence and entities of ``text``, with
    products resolved against the caller's catalogue."""

    serializer_class = AnalyzeRequestSerializer

    @extend_schema(request=AnalyzeRequestSerializer, responses=AnalysisSerializer)
    def post(self, request: Request) -> Response:
        payload = AnalyzeRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        analysis = services.text_analyze(self.tenant, payload.validated_data["text"])
        data = analysis.as_dict()
        entities = dict(data["entities"])
        if entities.get("budget_amount") is not None:
            entities["budget_amount"] = Decimal(entities["budget_amount"])
        data["entities"] = entities
        return Response(AnalysisSerializer(data).data)


class AgentRunViewSet(TenantReadOnlyViewSet):
    """Traces of the brain's turns and jobs: tokens, cost, latency and every step."""

    model = AgentRun
    serializer_class = AgentRunSerializer
    filterset_fields = ["kind", "status", "intent", "conversation"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        steps = AgentStep.objects.for_tenant(self.tenant).order_by("position")
        return queryset.prefetch_related(Prefetch("steps", queryset=steps)).order_by("-started_at")
