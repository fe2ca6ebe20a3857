"""Keys of an inbox's config that are secrets: stored encrypted (``morvo.fields.SecretsJSONField``)
and never shown back (admin, API), only their hint."""

from __future__ import annotations

SECRET_CONFIG_KEYS = frozenset(
    {
        "access_token",
        "app_secret",
        "verify_token",
        "bot_token",
        "secret_token",
        "auth_token",
        "api_access_token",
        "webhook_secret",
        "smtp_password",
    }
)
