"""``manage.py store_sync <tenant-slug>``: sync the tenant's active store connections now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.connectors.sync import store_sync
from crm.connectors.woocommerce import WooCommerceError
from crm.models import StoreConnection
from morvo import tenancy
from morvo.models import Tenant


class Command(BaseCommand):
    help = "Sync a tenant's store connections (products, stock, orders) now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's slug")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        connections = list(StoreConnection.objects.for_tenant(tenant).filter(is_active=True))
        if not connections:
            raise CommandError("This tenant has no active store connection.")
        failed = False
        with tenancy.tenant_context(tenant):
            for connection in connections:
                try:
                    result = store_sync(tenant, connection.pk)
                except WooCommerceError as error:
                    self.stderr.write(f"{connection.name}: {error}")
                    failed = True
                    continue
                self.stdout.write(f"{connection.name}: {result.as_dict()}")
        if failed:
            raise CommandError("At least one store could not be synced.")
