from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from morvo.models import Tenant
from morvo.services import ServiceError, api_token_issue


class Command(BaseCommand):
    help = (
        "Issue an API token for a member of a tenant. The key is printed once, alone on the last line "
        "(so `| tail -1` captures it); only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_slug", help="Slug of the tenant the token works in.")
        parser.add_argument("email", help="E-mail of a user who is a member of that tenant.")
        parser.add_argument("--name", default="", help="A label to recognise the token by (e.g. 'zapier').")

    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["tenant_slug"]
        email: str = options["email"].strip()
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug '{slug}'.")
        users = list(get_user_model().objects.filter(email__iexact=email).order_by("pk")[:2])
        if not users:
            raise CommandError(f"No user with the e-mail {email}.")
        if len(users) > 1:
            raise CommandError(f"More than one user has the e-mail {email}; issue the token from the admin.")
        try:
            token, raw_key = api_token_issue(user=users[0], tenant=tenant, name=options["name"])
        except ServiceError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Issued API token {token.key_prefix}… for {email} in '{tenant.slug}'. Keep it secret:")
        self.stdout.write(raw_key)
