"""Model fields of the platform."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import migrations, models

from morvo import crypto


class SecretsJSONField(models.JSONField):  # type: ignore[type-arg]
    """A JSON object whose values under ``secret_keys`` are stored encrypted (see
    ``morvo.crypto``) and read back in plain text; the other keys are stored as they are, so
    they stay queryable. Only top-level string values are encrypted."""

    def __init__(self, *args: Any, secret_keys: Iterable[str] = (), **kwargs: Any) -> None:
        self.secret_keys = tuple(sorted(secret_keys))
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["secret_keys"] = list(self.secret_keys)
        return name, path, args, kwargs

    def _map(self, value: Any, change: Any, keys: Iterable[str] | None) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            key: change(item) if (keys is None or key in keys) and isinstance(item, str) and item else item
            for key, item in value.items()
        }

    def get_prep_value(self, value: Any) -> Any:
        return super().get_prep_value(self._map(value, crypto.encrypt, self.secret_keys))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # Every encrypted value is read back, also under a key no longer listed as secret.
        return self._map(super().from_db_value(value, expression, connection), crypto.decrypt, None)


class EncryptedCharField(models.CharField):  # type: ignore[type-arg]
    """A short secret (an API key's secret half) stored encrypted and read back in plain text.
    ``max_length`` bounds the stored (encrypted) value, about 2.5 times the plain text plus
    100; forms should bound the plain text themselves."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return crypto.encrypt(value) if isinstance(value, str) and value else value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return crypto.decrypt(value)


def encrypt_existing(app_label: str, model_name: str, field_name: str) -> migrations.RunPython:
    """The migration step after a field became encrypted (an ``AlterField`` to one of the
    fields above): every row is saved once, so its value is stored encrypted. Reversed, the
    values are read (decrypted) and written back in plain text, for the field without
    encryption."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        for row in model._base_manager.all().iterator():
            row.save(update_fields=[field_name])

    def backwards(apps: Any, schema_editor: Any) -> None:
        import json

        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
        is_json = isinstance(field, models.JSONField)
        assignment = "%s::jsonb" if is_json else "%s"
        statement = f"UPDATE {model._meta.db_table} SET {field.column} = {assignment} WHERE id = %s"  # noqa: S608
        with schema_editor.connection.cursor() as cursor:
            for row in model._base_manager.all().iterator():
                value = getattr(row, field_name)
                cursor.execute(statement, [json.dumps(value) if is_json else value, row.pk])

    return migrations.RunPython(forwards, backwards)
