"""WooCommerce REST API v3 client (``/wp-json/wc/v3/…``).

Authentication as WooCommerce documents it: over HTTPS, HTTP Basic with the consumer key and
secret; over plain HTTP (a store on a private network), one-legged OAuth 1.0a with an
HMAC-SHA256 signature in the query string. Lists are paginated with ``page`` and
``per_page`` (at most 100) and the ``X-WP-TotalPages`` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

API_PREFIX = "/wp-json/wc/v3"
PER_PAGE = 100
MAX_PAGES = 1000


class WooCommerceError(Exception):
    """The store refused or could not be reached; the message says why (no secrets in it)."""


def _percent(value: str) -> str:
    return quote(str(value), safe="~")


def oauth_signature(method: str, url: str, params: dict[str, str], consumer_secret: str) -> str:
    """OAuth 1.0a signature base string and HMAC (RFC 5849 §3.4), as WooCommerce checks it:
    the key is the consumer secret followed by ``&`` (no token secret)."""
    normalized = "&".join(f"{_percent(key)}={_percent(value)}" for key, value in sorted(params.items()))
    base = "&".join([method.upper(), _percent(url), _percent(normalized)])
    digest = hmac.new(f"{consumer_secret}&".encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class WooCommerceClient:
    def __init__(
        self, base_url: str, consumer_key: str, consumer_secret: str, *, timeout: float = 20.0, transport: Any = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.secure = urlsplit(self.base_url).scheme == "https"
        auth = httpx.BasicAuth(consumer_key, consumer_secret) if self.secure else None
        self.http = httpx.Client(timeout=timeout, auth=auth, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WooCommerceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}{API_PREFIX}{path}"
        query = {key: str(value) for key, value in params.items() if value is not None}
        if not self.secure:
            query.update(
                {
                    "oauth_consumer_key": self.consumer_key,
                    "oauth_nonce": secrets.token_hex(16),
                    "oauth_signature_method": "HMAC-SHA256",
                    "oauth_timestamp": str(int(time.time())),
                }
            )
            query["oauth_signature"] = oauth_signature("GET", url, query, self.consumer_secret)
        try:
            response = self.http.get(url, params=query, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise WooCommerceError(f"cannot reach the store: {type(error).__name__}") from error
        if response.status_code in (401, 403):
            raise WooCommerceError(f"the store refused the consumer key ({response.status_code})")
        if response.status_code != 200:
            raise WooCommerceError(f"the store answered {response.status_code} for {path}")
        return response

    def paginate(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        page = 1
        while page <= MAX_PAGES:
            response = self._get(path, {**params, "page": page, "per_page": PER_PAGE})
            try:
                rows = response.json()
            except ValueError as error:
                raise WooCommerceError(f"the store sent no JSON for {path}") from error
            if not isinstance(rows, list):
                raise WooCommerceError(f"the store sent an unexpected answer for {path}")
            yield from rows
            try:
                total_pages = int(response.headers.get("X-WP-TotalPages", "1"))
            except ValueError:
                total_pages = 1
            if page >= total_pages or not rows:
                return
            page += 1

    def products(self) -> Iterator[dict[str, Any]]:
        return self.paginate("/products", status="any")

    def orders(self, modified_after: str | None = None) -> Iterator[dict[str, Any]]:
        return self.paginate("/orders", modified_after=modified_after, orderby="date", order="asc")
