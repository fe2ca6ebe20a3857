from __future__ import annotations

from rest_framework import serializers

from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin
from morvo.models import Tenant


class TenantSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", *Tenant.EDITABLE_FIELDS, "created_at"]
        read_only_fields = ["id", "slug", "created_at"]

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code, such as SAR.")
        return value.upper()

    def validate_primary_color(self, value: str) -> str:
        import re

        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise serializers.ValidationError("Use a colour like #0f766e.")
        return value


class UserSummarySerializer(serializers.Serializer[object]):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField(source="get_full_name")


class MeSerializer(serializers.Serializer[object]):
    user = UserSummarySerializer()
    tenant = TenantSerializer()
    role = serializers.CharField()
