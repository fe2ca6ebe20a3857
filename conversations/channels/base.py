"""What every channel adapter provides: webhook verification, inbound parsing into
provider-neutral events, and the provider's HTTP request for an outgoing message.

Adapters are pure: they read the inbox's ``config`` and the request, and never touch the
database. ``conversations.services`` does the writes, ``conversations.webhooks`` the HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from conversations.inbox_secrets import SECRET_CONFIG_KEYS

if TYPE_CHECKING:
    from conversations.models import Conversation, Inbox, Message, OutboxMessage

ONE_MEGABYTE = 1024 * 1024


class WebhookRejected(Exception):
    """The webhook is refused: ``status`` (400/401/403/413) and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def malformed(message: str = "The payload is not what this channel sends.") -> WebhookRejected:
    return WebhookRejected(400, "malformed_payload", message)


def unauthenticated(message: str = "The signature is missing.") -> WebhookRejected:
    return WebhookRejected(401, "missing_signature", message)


def forbidden(message: str = "The signature does not match.") -> WebhookRejected:
    return WebhookRejected(403, "bad_signature", message)


@dataclass
class InboundEvent:
    """A provider event in Morvo's words.

    ``kind`` is ``message`` (a customer wrote: ``data`` has thread, contact, message_id, text,
    and ``attachments`` when they sent a photo, a voice note, a file or a location; the text
    is then the caption, possibly empty),
    ``receipt`` (``data`` has message_id and status: sent/delivered/read/failed), ``status``
    (the conversation's status changed on the provider: thread and status) or ``ignored``
    (understood, nothing to do: recorded so a retry is also ignored).
    """

    dedup_key: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    auth: tuple[str, str] | None = None


class DeliveryError(Exception):
    """The provider refused or could not be reached. ``permanent`` failures (a 4xx other than
    408/429: a bad recipient, a revoked token) are dead letters at once; others are retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def hmac_hex(secret: str, body: bytes, digest: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise malformed("The body is not JSON.") from error


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# What a customer can send besides text, in Morvo's words (a message's ``content_type``).
ATTACHMENT_KINDS = ("image", "audio", "voice", "video", "document", "sticker", "location", "contact", "file")


def attachment(kind: str, **fields: Any) -> dict[str, str]:
    """One thing a customer sent (a photo, a voice note, a location…), as a message's
    ``attachments`` entry: its kind and the provider's references (an id, a URL, a MIME type,
    coordinates), empty ones left out. Meta's and Chatwoot's ``file`` is a document; a kind
    not known here is a ``file``."""
    kind = "document" if kind == "file" else kind
    found = {"type": kind if kind in ATTACHMENT_KINDS else "file"}
    for name, value in fields.items():
        if value is not None and value != "":
            found[name] = str(value)[:1000]
    return found


def file_kind(mime_type: str) -> str:
    """The attachment kind of a MIME type (``image/jpeg`` → image)."""
    major = (mime_type or "").split("/", 1)[0].lower()
    return major if major in ("image", "audio", "video") else "document"


def text_of(value: Any, limit: int = 4000) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


class Channel:
    """Base of the adapters. Subclasses set ``channel_type`` and override what they need."""

    channel_type: ClassVar[str] = ""
    max_body_bytes: ClassVar[int] = ONE_MEGABYTE
    # Messages a second this channel's provider accepts from one sender (inbox config
    # ``rate_per_second`` overrides it).
    default_rate_per_second: ClassVar[int] = 20
    default_api_base_url: ClassVar[str] = ""
    # True when a delivery is one HTTP call built by ``build_request`` and made by ``send``
    # (the outbox then makes several at once); False when ``deliver`` does more (e-mail).
    sends_over_http: ClassVar[bool] = True
    required_config: ClassVar[tuple[str, ...]] = ()

    def api_base_url(self, inbox: Inbox) -> str:
        return str(inbox.config.get("api_base_url") or self.default_api_base_url).rstrip("/")

    def rate_per_second(self, inbox: Inbox) -> int:
        try:
            return max(1, int(inbox.config.get("rate_per_second") or self.default_rate_per_second))
        except (TypeError, ValueError):
            return self.default_rate_per_second

    def config_problems(self, config: dict[str, Any]) -> dict[str, str]:
        """Missing or invalid config keys (key → reason); empty when the inbox can work."""
        return {
            key: _("This field is required.") for key in self.required_config if not str(config.get(key) or "").strip()
        }

    # --- inbound ---------------------------------------------------------------------------

    def handshake(self, inbox: Inbox, request: HttpRequest) -> HttpResponse | None:
        """Answer a provider's GET verification, or None when the channel has none (405)."""
        return None

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        raise NotImplementedError

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        raise NotImplementedError

    def acknowledge(self, events: list[InboundEvent]) -> HttpResponse:
        return JsonResponse({"ok": True, "accepted": len(events)})

    # --- outbound --------------------------------------------------------------------------

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        raise NotImplementedError

    def provider_message_id(self, response_body: Any) -> str:
        return ""

    def deliver(self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None) -> str:
        """Send and return the provider's message id. Raises :class:`DeliveryError`."""
        return self.send(self.build_request(inbox, conversation, outbox, message))

    def send(self, request: OutboundRequest) -> str:
        """Make one provider call built by :meth:`build_request` and return the provider's
        message id. Touches neither the database nor shared state other than the process's
        HTTP client, so the outbox runs several at once in threads. Raises
        :class:`DeliveryError`."""
        import httpx

        try:
            response = http_client().request(
                request.method,
                request.url,
                headers=request.headers,
                json=request.json,
                data=request.data,
                auth=request.auth,
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from error
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code not in (408, 429)
            raise DeliveryError(f"HTTP {response.status_code}: {response.text[:300]}", permanent=permanent)
        try:
            parsed = response.json()
        except ValueError:
            parsed = {}
        return self.provider_message_id(parsed)


_client: Any = None
_client_pid = 0
_client_lock = threading.Lock()


def http_client() -> Any:
    """One ``httpx.Client`` per process for the providers' APIs: it keeps connections alive
    between deliveries, and building one (its TLS context) costs more than a delivery. A
    process forked from one that had a client makes its own."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                import httpx

                _client = httpx.Client(timeout=10.0, follow_redirects=False)
                _client_pid = os.getpid()
    return _client


def config_masked(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every secret replaced by a hint (its last four characters when it is
    long enough that they give nothing away), for the admin and the API."""
    masked: dict[str, Any] = {}
    for key, value in config.items():
        if key in SECRET_CONFIG_KEYS and value not in (None, ""):
            text = str(value)
            masked[key] = f"••••{text[-4:]}" if len(text) >= 16 else "••••"
        else:
            masked[key] = value
    return masked
