"""Secrets kept encrypted in the database (an inbox's provider tokens, a store connection's
secret, the ad platform's token).

Values are Fernet tokens (AES-128-CBC with HMAC-SHA256) behind the prefix ``enc:v1:``. The
keys come from ``FIELD_ENCRYPTION_KEYS`` (Fernet keys, comma-separated: the first encrypts,
all decrypt, so a key is rotated by putting the new one first). Without it the key is derived
from ``SECRET_KEY`` with HKDF, and ``SECRET_KEY_FALLBACKS`` give keys that still decrypt, so
rotating the secret key the way Django documents keeps these readable. The derived keys
decrypt even once ``FIELD_ENCRYPTION_KEYS`` is set, so values written before it stay
readable. ``manage.py secrets_reencrypt`` writes every stored secret again with the current
first key; after it, an old key can be removed.

A value that no key opens is left as it is (still encrypted, logged): the channel then fails
closed (its signature checks and deliveries fail) and saving the row keeps the ciphertext,
so a wrong key loses nothing.
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "enc:v1:"


def _derived_key(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"morvo field encryption").derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(material)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secrets: tuple[str, ...]) -> Any:
    from cryptography.fernet import Fernet, MultiFernet

    # The first key encrypts: an explicit one if set, else the one derived from SECRET_KEY.
    material = [key.encode() for key in keys] + [_derived_key(secret) for secret in secrets if secret]
    return MultiFernet([Fernet(key) for key in material])


def fernet() -> Any:
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", None) or []
    secrets = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return _fernet(tuple(str(key) for key in keys if str(key).strip()), tuple(str(secret) for secret in secrets))


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(value: str) -> str:
    """``value`` encrypted (an already encrypted value is returned as it is)."""
    if is_encrypted(value):
        return value
    return PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt(value: Any) -> Any:
    """The plain text of an encrypted value; anything else is returned as it is."""
    from cryptography.fernet import InvalidToken

    if not is_encrypted(value):
        return value
    try:
        return fernet().decrypt(value[len(PREFIX) :].encode()).decode()
    except (InvalidToken, ValueError):
        logger.error("an encrypted secret could not be decrypted: FIELD_ENCRYPTION_KEYS or SECRET_KEY changed")
        return value
