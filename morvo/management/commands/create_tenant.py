from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.utils.text import slugify

from morvo.models import Tenant
from morvo.services import ServiceError, tenant_create_with_owner


class Command(BaseCommand):
    help = (
        "Create a tenant and a new owner account, and print the owner's password "
        "(the last line is 'Password: <password>')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="URL name of the tenant: lower-case letters, digits, hyphens.")
        parser.add_argument("owner_email", help="E-mail of the new owner; it must not belong to a user yet.")
        parser.add_argument("--name", default=None, help="Display name (defaults to the slug).")
        parser.add_argument(
            "--business-type",
            default=Tenant.BusinessType.GENERAL,
            choices=Tenant.BusinessType.values,
            help="Kind of business (default: general).",
        )
        parser.add_argument(
            "--language",
            default=Tenant.Language.ARABIC,
            choices=Tenant.Language.values,
            help="Default language of the tenant (default: ar).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["slug"]
        email: str = options["owner_email"].strip()
        # The service would quietly slugify "My Shop" into "my-shop"; an operator should
        # get exactly the slug they typed, or be told why not.
        if not slug or slugify(slug) != slug:
            suggestion = slugify(slug)
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            raise CommandError(f"Invalid slug '{slug}': use lower-case letters, digits and hyphens{hint}.")
        try:
            validate_email(email)
        except ValidationError as error:
            raise CommandError(f"Invalid e-mail address '{email}'.") from error
        try:
            tenant, password = tenant_create_with_owner(
                slug=slug,
                owner_email=email,
                name=options["name"],
                business_type=options["business_type"],
                default_language=options["language"],
            )
        except ServiceError as error:
            raise CommandError(str(error)) from error
        except ValidationError as error:
            messages = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in error.message_dict.items())
            raise CommandError(f"Invalid tenant: {messages}") from error
        self.stdout.write(self.style.SUCCESS(f"Created tenant '{tenant.slug}' ({tenant.name}) owned by {email}."))
        self.stdout.write(f"E-mail: {email}")
        self.stdout.write(f"Password: {password}")
