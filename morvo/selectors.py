"""Reads of the core app: tenants, memberships, tokens, heartbeats."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from morvo.models import ApiToken, Heartbeat, Membership, Tenant, hash_token


def membership_active(user: User | AnonymousUser, preferred_tenant_id: int | None) -> Membership | None:
    """The membership the user works in: the selected tenant if they belong to it, else their first."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("tenant").filter(user=user, tenant__is_active=True)
    if preferred_tenant_id is not None:
        chosen = memberships.filter(tenant_id=preferred_tenant_id).first()
        if chosen is not None:
            return chosen
    return memberships.order_by("created_at", "id").first()


def membership_list(user: User) -> list[Membership]:
    return list(Membership.objects.select_related("tenant").filter(user=user, tenant__is_active=True))


def membership_for(user: User, tenant: Tenant) -> Membership | None:
    return Membership.objects.filter(user=user, tenant=tenant).first()


def api_token_by_key(raw_key: str) -> ApiToken | None:
    """The active token with this key, its user and tenant still active and still a member."""
    token = (
        ApiToken.objects.active()
        .select_related("user", "tenant")
        .filter(key_hash=hash_token(raw_key), user__is_active=True, tenant__is_active=True)
        .first()
    )
    if token is None or not Membership.objects.filter(user_id=token.user_id, tenant_id=token.tenant_id).exists():
        return None
    return token


def heartbeat_age(name: str = "beat") -> timedelta | None:
    beat = Heartbeat.objects.filter(name=name).first()
    return None if beat is None else timezone.now() - beat.beat_at
