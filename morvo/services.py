"""Writes and business actions of the core app."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from morvo.models import ApiToken, Heartbeat, Membership, Tenant, hash_token


class ServiceError(ValueError):
    """A business rule refused the action; the message is meant for the caller."""


def tenant_update(tenant: Tenant, **fields: Any) -> Tenant:
    unknown = set(fields) - set(Tenant.EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(f"Cannot change: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save(update_fields=[*fields])
    return tenant


def _unique_slug(base: str) -> str:
    slug = slugify(base)[:50] or "shop"
    candidate, counter = slug, 2
    while Tenant.objects.filter(slug=candidate).exists():
        candidate, counter = f"{slug}-{counter}", counter + 1
    return candidate


@transaction.atomic
def tenant_create(*, name: str, owner: User, slug: str | None = None, **fields: Any) -> Tenant:
    """Create a tenant with ``owner`` as its owner."""
    if slug is not None:
        slug = slugify(slug)
        if not slug:
            raise ServiceError("The slug must contain letters or digits.")
        if Tenant.objects.filter(slug=slug).exists():
            raise ServiceError(f"A tenant with the slug '{slug}' already exists.")
    tenant = Tenant(name=name, slug=slug or _unique_slug(name), **fields)
    tenant.full_clean()
    tenant.save()
    Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


@transaction.atomic
def tenant_create_with_owner(
    *, slug: str, owner_email: str, name: str | None = None, **fields: Any
) -> tuple[Tenant, str]:
    """Create a tenant and a new owner account; returns the tenant and the owner's password."""
    User = get_user_model()
    if User.objects.filter(email__iexact=owner_email).exists():
        raise ServiceError(f"A user with the e-mail {owner_email} already exists.")
    password = secrets.token_urlsafe(12)
    owner = User.objects.create_user(username=owner_email, email=owner_email, password=password)
    _mark_email_verified(owner, owner_email)
    tenant = tenant_create(name=name or slug, owner=owner, slug=slug, **fields)
    return tenant, password


def _mark_email_verified(user: User, email: str) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})


def api_token_issue(*, user: User, tenant: Tenant, name: str = "") -> tuple[ApiToken, str]:
    """Issue a token; the raw key is returned once and never stored."""
    if not Membership.objects.filter(user=user, tenant=tenant).exists():
        raise ServiceError(f"{user} is not a member of {tenant.slug}.")
    raw_key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user, tenant=tenant, name=name, key_hash=hash_token(raw_key), key_prefix=raw_key[:10]
    )
    return token, raw_key


def api_token_revoke(token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def heartbeat_record(name: str, worker: str = "") -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now(), "worker": worker})
    return beat
