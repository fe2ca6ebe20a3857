from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from campaigns.models import AdCampaign, CampaignDailyMetric, CampaignEvaluation, Decision
from crm.models import Product
from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin


class TenantProductField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A product of the caller's tenant (another tenant's id is "does not exist")."""

    def get_queryset(self) -> Any:
        view = self.context.get("view")
        tenant = getattr(view, "tenant", None)
        if tenant is None:
            return Product.objects.all_tenants().none()
        return Product.objects.for_tenant(tenant)


class CampaignSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    product = TenantProductField(allow_null=True, required=False)
    # Plain strings in the schema: the decision enum is documented once, on evaluations.
    last_decision = serializers.CharField(read_only=True, help_text="The last decision: " + ", ".join(Decision.values))

    class Meta:
        model = AdCampaign
        fields = [
            "id",
            "product",
            "platform",
            "external_id",
            "name",
            "objective",
            "status",
            "paused_by",
            "daily_budget",
            "total_budget",
            "currency",
            "start_date",
            "end_date",
            "creative_text",
            "ad_copy",
            "targeting",
            "proposed_by_autopilot",
            "expected_roi",
            "last_decision",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "paused_by",
            "ad_copy",
            "proposed_by_autopilot",
            "expected_roi",
            "last_decision",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "daily_budget": {"min_value": Decimal("0")},
            "total_budget": {"min_value": Decimal("0")},
        }

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError(_("Use a three-letter ISO 4217 code, such as SAR."))
        return value.upper()

    def validate_targeting(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Targeting is an object."))
        return value


class MetricSerializer(CachedFieldsModelSerializer):
    class Meta:
        model = CampaignDailyMetric
        fields = ["date", "spend", "impressions", "clicks", "conversions", "revenue", "new_customers"]


class MetricIngestSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    metrics = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=1000)


class MetricIngestResultSerializer(serializers.Serializer[Any]):
    saved = serializers.IntegerField()


class EvaluationSerializer(CachedFieldsModelSerializer):
    actor_name = serializers.SerializerMethodField()
    actor = serializers.CharField(read_only=True, help_text="autopilot, or person (see actor_name)")

    class Meta:
        model = CampaignEvaluation
        fields = [
            "id",
            "campaign",
            "slot",
            "window_start",
            "window_end",
            "baseline_start",
            "baseline_end",
            "baseline_sales",
            "current_sales",
            "baseline_views",
            "current_views",
            "revenue",
            "cost",
            "new_customers",
            "product_price",
            "sales_impact",
            "view_impact",
            "roas",
            "cpa",
            "efficiency_score",
            "risk_score",
            "risk_factors",
            "decision",
            "reason_ar",
            "reason_en",
            "thresholds",
            "action_taken",
            "action_detail",
            "actor",
            "actor_name",
            "created_at",
        ]

    def get_actor_name(self, obj: CampaignEvaluation) -> str:
        user = obj.actor_user
        if user is None:
            return ""
        return str(user.get_full_name() or user.email)


def _amount(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=6, min_value=Decimal("0"), **kwargs)


class EvaluateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    """The figures of one evaluation: sales and views (counts) before and during the
    campaign, its revenue and cost, new customers and the product's price."""

    baseline_sales = _amount()
    current_sales = _amount()
    baseline_views = _amount()
    current_views = _amount()
    revenue = _amount()
    cost = _amount()
    new_customers = serializers.IntegerField(min_value=0, max_value=10**12)
    product_price = _amount()


class EvaluateResultSerializer(serializers.Serializer[Any]):
    sales_impact = serializers.DecimalField(max_digits=30, decimal_places=6)
    view_impact = serializers.DecimalField(max_digits=30, decimal_places=6)
    roas = serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True)
    cpa = serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True)
    efficiency_score = serializers.DecimalField(max_digits=30, decimal_places=6)
    decision = serializers.CharField(help_text="One of " + ", ".join(Decision.values))
