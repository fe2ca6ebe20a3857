from __future__ import annotations

import copy
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


class CachedFieldsModelSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A ModelSerializer that introspects its model once per class, not once per instance.

    DRF builds every field from the model's metadata each time a serializer is made (about a
    millisecond for ten fields, on every request). The built fields depend only on the class
    here (none of Morvo's serializers vary their fields by context), so they are built once
    and each instance gets fresh, unbound copies, as DRF expects. A plain field is copied
    from its own constructor arguments (DRF keeps them on every field): what DRF's
    ``Field.__deepcopy__`` does, without deep-copying arguments no field changes. A nested
    serializer binds the child it was given, so it gets a real deep copy.
    """

    def get_fields(self) -> dict[str, Any]:
        cls = type(self)
        cached = cls.__dict__.get("_built_fields")
        if cached is None:
            cached = super().get_fields()
            cls._built_fields = cached  # type: ignore[attr-defined]
        return {name: _fresh(field) for name, field in cached.items()}


def _fresh(field: Any) -> Any:
    # A nested serializer, or a list/dict field, binds the child it was given: copy it deeply.
    if isinstance(field, serializers.BaseSerializer) or getattr(field, "child", None) is not None:
        return copy.deepcopy(field)
    return type(field)(*field._args, **field._kwargs)
