"""Reads of the core app: tenants, memberships, tokens, heartbeats."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Model
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


@functools.cache
def _token_lookup_sql() -> tuple[str, list[tuple[type[Model], list[str]]]]:
    """One JOIN of token, user, tenant and membership, its SQL built once from the models.

    This runs on every API request and every websocket handshake; building and compiling
    the equivalent ORM query each time cost several milliseconds of CPU.
    """
    models: list[tuple[type[Model], str]] = [
        (ApiToken, "t"),
        (get_user_model(), "u"),
        (Tenant, "n"),
        (Membership, "m"),
    ]
    quote = connection.ops.quote_name
    columns: list[str] = []
    layout: list[tuple[type[Model], list[str]]] = []
    for model, alias in models:
        fields = [field.attname for field in model._meta.concrete_fields]
        columns += [f"{alias}.{quote(field.column or field.attname)}" for field in model._meta.concrete_fields]
        layout.append((model, fields))
    table = {alias: quote(model._meta.db_table) for model, alias in models}
    # Only quoted table and column names from the models are interpolated.
    sql = (
        f"SELECT {', '.join(columns)} FROM {table['t']} t "  # noqa: S608
        f"JOIN {table['u']} u ON u.id = t.user_id "
        f"JOIN {table['n']} n ON n.id = t.tenant_id "
        f"JOIN {table['m']} m ON m.user_id = t.user_id AND m.tenant_id = t.tenant_id "
        "WHERE t.key_hash = %s AND t.revoked_at IS NULL AND u.is_active AND n.is_active"
    )
    return sql, layout


def api_token_by_key(raw_key: str) -> tuple[ApiToken, Membership] | None:
    """The active token with this key, its user and tenant active, and the user's membership
    in that tenant (no membership, no access). One query."""
    sql, layout = _token_lookup_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [hash_token(raw_key)])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Any] = []
    offset = 0
    for model, fields in layout:
        instances.append(model.from_db(connection.alias, fields, row[offset : offset + len(fields)]))
        offset += len(fields)
    token, user, tenant, membership = instances
    token.user = membership.user = user
    token.tenant = membership.tenant = tenant
    return token, membership


def heartbeat_age(name: str = "beat") -> timedelta | None:
    beat = Heartbeat.objects.filter(name=name).first()
    return None if beat is None else timezone.now() - beat.beat_at
