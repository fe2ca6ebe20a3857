from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from morvo import crypto
from morvo.fields import EncryptedCharField, SecretsJSONField


def _unreadable(value: Any) -> int:
    """How many of ``value``'s secrets are still encrypted after reading: no key opens them."""
    if isinstance(value, dict):
        return sum(1 for item in value.values() if crypto.is_encrypted(item))
    return int(crypto.is_encrypted(value))


class Command(BaseCommand):
    help = (
        "Write every stored secret again (inbox configs, store connections, any encrypted field) with the "
        "current first key of FIELD_ENCRYPTION_KEYS (or the key derived from SECRET_KEY). Run it after "
        "putting a new key first; then the old key can be removed. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Rows written per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = max(1, int(options["batch_size"]))
        unreadable_total = 0
        for model in apps.get_models():
            fields = [
                f.name for f in model._meta.concrete_fields if isinstance(f, SecretsJSONField | EncryptedCharField)
            ]
            if not fields:
                continue
            written = unreadable = 0
            # Maintenance across tenants: the base manager, not the tenant-scoped one.
            ids = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(ids), batch_size):
                with transaction.atomic():
                    for row in model._base_manager.filter(pk__in=ids[start : start + batch_size]).select_for_update():
                        # Read in plain text, written encrypted with the first key; a value no
                        # key opens is written back as the same ciphertext (nothing is lost).
                        unreadable += sum(_unreadable(getattr(row, name)) for name in fields)
                        row.save(update_fields=fields)
                        written += 1
            unreadable_total += unreadable
            self.stdout.write(f"{model._meta.label}: {written} rows written again ({', '.join(fields)})")
            if unreadable:
                self.stderr.write(
                    f"{model._meta.label}: {unreadable} values no key opens were kept as they are; "
                    "do not remove the key they were written with"
                )
        if unreadable_total:
            raise SystemExit(1)
