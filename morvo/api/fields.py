from __future__ import annotations

from typing import Any

from rest_framework import serializers


class RejectUnknownFieldsMixin:
    """A field the serializer does not accept (unknown or read-only) is a 400, never ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["This field cannot be written."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]
