"""The campaigns REST API. Views parse, call ``campaigns.services`` and serialize; every
lookup goes through the tenant's queryset, so another tenant's campaign is a 404 like a
missing one, and the lookup comes before any validation."""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import decision, selectors, services
from campaigns.api.serializers import (
    CampaignSerializer,
    EvaluateResultSerializer,
    EvaluateSerializer,
    EvaluationSerializer,
    MetricIngestResultSerializer,
    MetricIngestSerializer,
    MetricSerializer,
)
from campaigns.models import AdCampaign, CampaignEvaluation
from morvo.api.pagination import MorvoPagination
from morvo.api.views import TenantAPIView, TenantModelViewSet
from morvo.models import Membership

ID_PARAMETER = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The campaign's id.")
NOT_FOUND = OpenApiResponse(description="No such campaign (or another tenant's).")
INVALID = OpenApiResponse(description="Invalid input, in the API's error format.")
REFUSED = OpenApiResponse(description="The campaign's status does not allow this (422) in the API's error format.")
MAX_CSV_BYTES = 1024 * 1024


class UnprocessableError(exceptions.APIException):
    status_code = 422
    default_code = "unprocessable"
    default_detail = _("The request cannot be carried out.")


class PlatformUnavailableError(exceptions.APIException):
    status_code = 503
    default_code = "platform_unavailable"
    default_detail = _("The ad platform is unavailable.")


def campaign_error(error: services.CampaignError) -> exceptions.APIException:
    if error.code == "platform_error":
        return PlatformUnavailableError(str(error))
    if error.code in ("invalid_status", "not_live", "not_started", "campaign_live", "no_product"):
        return UnprocessableError(str(error), code=error.code)
    if error.field:
        return exceptions.ValidationError({error.field: [str(error)]}, code=error.code)
    return exceptions.ValidationError(str(error), code=error.code)


class CSVParser(parsers.BaseParser):
    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise exceptions.ValidationError({"file": [_("The CSV is larger than 1 MB.")]}, code="too_large")
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise exceptions.ParseError(_("The CSV must be UTF-8.")) from None


@extend_schema_view(
    list=extend_schema(summary="List ad campaigns"),
    retrieve=extend_schema(
        summary="An ad campaign", parameters=[ID_PARAMETER], responses={200: CampaignSerializer, 404: NOT_FOUND}
    ),
    create=extend_schema(summary="Create a campaign (a draft)", responses={201: CampaignSerializer, 400: INVALID}),
    partial_update=extend_schema(
        summary="Change a campaign",
        parameters=[ID_PARAMETER],
        responses={200: CampaignSerializer, 400: INVALID, 404: NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Delete a draft or completed campaign",
        parameters=[ID_PARAMETER],
        responses={204: None, 404: NOT_FOUND, 422: REFUSED},
    ),
)
class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantModelViewSet,
):
    """The tenant's ad campaigns, their daily metrics and evaluations, and the actions."""

    model = AdCampaign
    serializer_class = CampaignSerializer
    pagination_class = MorvoPagination
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset()
        return selectors.campaign_list(self.tenant).order_by("-created_at", "-id")

    def perform_create(self, serializer: Any) -> None:
        try:
            serializer.instance = services.campaign_create(self.tenant, **serializer.validated_data)
        except services.CampaignError as error:
            raise campaign_error(error) from error

    def perform_update(self, serializer: Any) -> None:
        try:
            serializer.instance = services.campaign_update(
                self.tenant, serializer.instance.pk, **serializer.validated_data
            )
        except services.CampaignError as error:
            raise campaign_error(error) from error

    def perform_destroy(self, instance: AdCampaign) -> None:
        try:
            services.campaign_delete(self.tenant, instance.pk)
        except services.CampaignError as error:
            raise campaign_error(error) from error
        except ProtectedError as error:  # pragma: no cover - nothing protects a campaign today
            raise UnprocessableError(str(error)) from error

    def _act(self, done: Any) -> Response:
        try:
            campaign = done()
        except services.CampaignError as error:
            raise campaign_error(error) from error
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Approve a draft: launch it on its platform",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: CampaignSerializer, 404: NOT_FOUND, 422: REFUSED},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        return self._act(lambda: services.campaign_launch(self.tenant, campaign.pk))

    @extend_schema(
        summary="Pause a campaign",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: CampaignSerializer, 404: NOT_FOUND, 422: REFUSED},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        return self._act(lambda: services.campaign_pause(self.tenant, campaign.pk))

    @extend_schema(
        summary="Resume a paused campaign",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: CampaignSerializer, 404: NOT_FOUND, 422: REFUSED},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        return self._act(lambda: services.campaign_resume(self.tenant, campaign.pk))

    @extend_schema(
        operation_id="campaigns_evaluate_now",
        summary="Evaluate now (and act, unless an emergency stop is on)",
        parameters=[ID_PARAMETER],
        request=None,
        responses={201: EvaluationSerializer, 404: NOT_FOUND, 422: REFUSED},
    )
    @action(detail=True, methods=["post"], url_path="evaluate")
    def evaluate_now(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        try:
            evaluation = services.campaign_evaluate_now(self.tenant, campaign.pk, request.user)
        except services.CampaignError as error:
            raise campaign_error(error) from error
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Daily metrics of a campaign",
        parameters=[ID_PARAMETER],
        responses={200: MetricSerializer(many=True), 404: NOT_FOUND},
        methods=["GET"],
    )
    @extend_schema(
        summary="Send daily metrics (JSON, or a CSV body with a header row)",
        description='JSON: `{"metrics": [{"date": "2026-11-20", "spend": "12.50", "impressions": 900, '
        '"clicks": 40, "conversions": 3, "revenue": "80.00", "new_customers": 2}]}`. CSV (`text/csv`): '
        "a header row naming `date` and any of the metric columns. A day sent again replaces its figures; one bad "
        "row refuses the whole batch.",
        parameters=[ID_PARAMETER],
        request={"application/json": MetricIngestSerializer, "text/csv": {"type": "string"}},
        responses={200: MetricIngestResultSerializer, 400: INVALID, 404: NOT_FOUND, 415: INVALID},
        methods=["POST"],
    )
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[parsers.JSONParser, CSVParser],
        pagination_class=None,
    )
    def metrics(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        if request.method == "GET":
            rows = selectors.metric_list(self.tenant, campaign).order_by("date")
            return Response(MetricSerializer(rows, many=True).data)
        try:
            if isinstance(request.data, str):
                saved = services.campaign_metrics_import_csv(self.tenant, campaign, request.data)
            else:
                serializer = MetricIngestSerializer(data=request.data)
                serializer.is_valid(raise_exception=True)
                saved = services.campaign_metrics_upsert(self.tenant, campaign, serializer.validated_data["metrics"])
        except services.CampaignError as error:
            raise campaign_error(error) from error
        return Response({"saved": saved})

    @extend_schema(
        summary="Evaluations of a campaign, newest first",
        parameters=[ID_PARAMETER],
        responses={200: EvaluationSerializer(many=True), 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def evaluations(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        rows = selectors.evaluation_list(self.tenant, campaign).order_by("-created_at", "-id")
        page = self.paginate_queryset(rows)
        data = EvaluationSerializer(page if page is not None else rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)


class EvaluateView(TenantAPIView):
    """The decision table on given figures, with the default thresholds. Writes nothing."""

    serializer_class = EvaluateSerializer
    write_roles = frozenset(Membership.Role)

    @extend_schema(
        operation_id="campaigns_evaluate_figures",
        summary="Evaluate figures with the default decision table",
        request=EvaluateSerializer,
        responses={200: EvaluateResultSerializer, 400: INVALID},
    )
    def post(self, request: Request) -> Response:
        serializer = EvaluateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        figures = decision.decide(decision.Inputs(**data))
        return Response(
            EvaluateResultSerializer(
                {
                    "sales_impact": figures.sales_impact,
                    "view_impact": figures.view_impact,
                    "roas": figures.roas,
                    "cpa": figures.cpa,
                    "efficiency_score": figures.efficiency_score,
                    "decision": figures.decision,
                }
            ).data
        )


__all__ = ["CampaignEvaluation", "CampaignViewSet", "EvaluateView"]
