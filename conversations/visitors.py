"""The public chat's visitors: an id in a signed cookie, nothing else."""

from __future__ import annotations

import uuid

from django.core import signing

COOKIE_NAME = "morvo_visitor"
COOKIE_SALT = "morvo.visitor"
COOKIE_MAX_AGE = 365 * 24 * 3600


def new_visitor_id() -> str:
    return uuid.uuid4().hex


def visitor_id_from_cookie(value: str | None) -> str | None:
    """The visitor id if the cookie value is ours and intact (as request.get_signed_cookie)."""
    if not value:
        return None
    try:
        return str(signing.get_cookie_signer(salt=COOKIE_NAME + COOKIE_SALT).unsign(value, max_age=COOKIE_MAX_AGE))
    except signing.BadSignature:
        return None
