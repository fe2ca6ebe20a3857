from __future__ import annotations

from rest_framework import serializers

from agents_app.models import AgentRun, AgentStep
from agents_app.router import INTENTS
from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin

MAX_ANALYZE_CHARACTERS = 4000


class AnalyzeRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):  # type: ignore[type-arg]
    text = serializers.CharField(max_length=MAX_ANALYZE_CHARACTERS, trim_whitespace=True)


class ProductEntitySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    name = serializers.CharField()
    score = serializers.FloatField()


class EntitiesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    products = ProductEntitySerializer(many=True)
    budget_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True, coerce_to_string=True)
    currency = serializers.CharField(allow_null=True)
    quantity = serializers.IntegerField(allow_null=True)
    size = serializers.CharField(allow_null=True)
    dates = serializers.ListField(child=serializers.DictField())
    times = serializers.ListField(child=serializers.DictField(child=serializers.IntegerField()))
    channels = serializers.ListField(child=serializers.CharField())


class AnalysisSerializer(serializers.Serializer):  # type: ignore[type-arg]
    language = serializers.ChoiceField(choices=["ar", "en", "mixed"])
    intent = serializers.ChoiceField(choices=list(INTENTS))
    priority = serializers.ChoiceField(choices=["low", "medium", "high", "urgent"])
    sentiment = serializers.FloatField(min_value=-1, max_value=1)
    confidence = serializers.FloatField(min_value=0, max_value=1)
    entities = EntitiesSerializer()


class AgentStepSerializer(CachedFieldsModelSerializer):
    class Meta:
        model = AgentStep
        fields = [
            "position",
            "kind",
            "name",
            "provider",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_ms",
            "error",
        ]


class AgentRunSerializer(CachedFieldsModelSerializer):
    steps = AgentStepSerializer(many=True, read_only=True)

    class Meta:
        model = AgentRun
        fields = [
            "id",
            "kind",
            "conversation",
            "message",
            "intent",
            "language",
            "brain",
            "status",
            "plan",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_ms",
            "error",
            "started_at",
            "finished_at",
            "steps",
        ]
