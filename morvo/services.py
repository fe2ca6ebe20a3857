"""Writes and business actions of the core app."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from morvo.models import ApiToken, Heartbeat, Membership, Tenant, ThrottleWindow, hash_token


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


def throttle_hit(key: str, window_start: int, window_seconds: int, amount: int = 1) -> int:
    """Count ``amount`` hits (one by default) of ``key`` in the window starting at
    ``window_start`` (epoch seconds); returns the hits so far in that window, these included.
    Atomic across processes."""
    if settings.REDIS_URL:
        cache_key = f"throttle:{key}:{window_start}"
        # add() is a no-op when the key exists; incr() is atomic in Redis.
        cache.add(cache_key, 0, timeout=window_seconds + 5)
        return int(cache.incr(cache_key, amount))
    table = ThrottleWindow._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, window_start, hits) VALUES (%s, %s, %s) "  # noqa: S608 (table name is ours)
            f"ON CONFLICT (key, window_start) DO UPDATE SET hits = {table}.hits + EXCLUDED.hits RETURNING hits",
            [key, window_start, amount],
        )
        return int(cursor.fetchone()[0])


def throttle_windows_prune(older_than_seconds: int = 3600) -> int:
    import time

    deleted, _ = ThrottleWindow.objects.filter(window_start__lt=int(time.time()) - older_than_seconds).delete()
    return deleted


def broker_messages_prune(older_than_seconds: int = 3600) -> int:
    """Delete the SQL broker's delivered messages (the embedded profile's Celery broker).

    Kombu's SQL transport marks a message invisible when a worker takes it and never deletes
    it, so without this the table grows by a row per task for ever. A message taken an hour
    ago has long been run (or, if its worker died, handed back as a new row). Returns how
    many were deleted; 0 when the broker is not the SQL one."""
    from morvo.broker import SCHEME

    if not str(getattr(settings, "CELERY_BROKER_URL", "")).startswith(f"{SCHEME}+"):
        return 0
    if "kombu_message" not in connection.introspection.table_names():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM kombu_message WHERE visible = false AND timestamp < now() - make_interval(secs => %s)",
            [older_than_seconds],
        )
        return cursor.rowcount


def heartbeat_record(name: str, worker: str = "") -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now(), "worker": worker})
    return beat
