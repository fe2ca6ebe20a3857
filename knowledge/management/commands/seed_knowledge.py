"""``manage.py seed_knowledge [--tenant SLUG]``: the global MENA marketing library, and with
``--tenant`` the demo shop's own documents for that business. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge import services
from morvo.models import Tenant


class Command(BaseCommand):
    help = "Load the global knowledge library (and, with --tenant, the demo shop's documents)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Also load the demo shop's documents into this business (its slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options.get("tenant"):
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No business with the slug {options['tenant']!r}.")
        counts = services.knowledge_seed_global()
        self.stdout.write(
            f"Global library: {counts['created']} added, {counts['replaced']} updated, {counts['unchanged']} unchanged."
        )
        if tenant is not None:
            counts = services.knowledge_seed_tenant(tenant)
            self.stdout.write(
                f"{tenant.slug}: {counts['created']} added, {counts['replaced']} updated, "
                f"{counts['unchanged']} unchanged."
            )
