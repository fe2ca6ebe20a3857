"""What WhatsApp Cloud API, Instagram and Messenger share: Meta's webhook verification GET
(``hub.mode=subscribe``, ``hub.verify_token``, answered with ``hub.challenge``) and the
``X-Hub-Signature-256: sha256=<hex>`` header, an HMAC-SHA256 of the raw body keyed with the
app secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

from conversations.channels.base import Channel, constant_time_equal, forbidden, hmac_hex, unauthenticated

if TYPE_CHECKING:
    from conversations.models import Inbox

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v21.0"


class MetaChannel(Channel):
    default_api_base_url = DEFAULT_GRAPH_URL

    def graph_url(self, inbox: Inbox, path: str) -> str:
        version = str(inbox.config.get("api_version") or DEFAULT_GRAPH_VERSION)
        return f"{self.api_base_url(inbox)}/{version}/{path.lstrip('/')}"

    def handshake(self, inbox: Inbox, request: HttpRequest) -> HttpResponse | None:
        expected = str(inbox.config.get("verify_token") or "")
        mode = request.GET.get("hub.mode", "")
        token = request.GET.get("hub.verify_token", "")
        challenge = request.GET.get("hub.challenge", "")
        if mode != "subscribe" or not expected or not challenge or not constant_time_equal(token, expected):
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header:
            raise unauthenticated()
        secret = str(inbox.config.get("app_secret") or "")
        if not secret or not header.startswith("sha256="):
            raise forbidden()
        if not constant_time_equal(header[len("sha256=") :], hmac_hex(secret, body)):
            raise forbidden()
