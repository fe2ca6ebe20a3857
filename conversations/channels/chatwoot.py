"""The Chatwoot bridge: Morvo answers the conversations of a Chatwoot inbox.

Inbound: Chatwoot's webhook events. ``message_created`` with ``message_type`` ``incoming``
from a contact is a customer's message; outgoing, private, activity and template messages
(Morvo's own replies among them) are ignored; ``conversation_status_changed`` is mirrored.
When the inbox has a ``webhook_secret``, ``X-Chatwoot-Signature`` must be the HMAC-SHA256
(hex, optionally ``sha256=``-prefixed) of ``"<X-Chatwoot-Timestamp>.<raw body>"``, and the
timestamp within five minutes. Outbound: Chatwoot's application REST API with the
``api_access_token`` header: messages and private notes
(``POST /api/v1/accounts/{account}/conversations/{id}/messages``), labels
(``POST …/conversations/{id}/labels``) and contact custom attributes
(``PUT /api/v1/accounts/{account}/contacts/{contact}``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from conversations.channels.base import (
    Channel,
    InboundEvent,
    OutboundRequest,
    WebhookRejected,
    attachment,
    body_hash,
    constant_time_equal,
    forbidden,
    hmac_hex,
    json_body,
    malformed,
    text_of,
    unauthenticated,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from conversations.models import Conversation, Inbox, Message, OutboxMessage

TIMESTAMP_TOLERANCE_SECONDS = 300
STATUSES = {"open", "resolved", "pending", "snoozed"}
# Chatwoot's webhooks say "incoming"; its API objects say 0.
INCOMING = ("incoming", 0)


class ChatwootChannel(Channel):
    channel_type = "chatwoot"
    default_rate_per_second = 20
    required_config = ("base_url", "api_access_token", "account_id")

    def config_problems(self, config: dict[str, Any]) -> dict[str, str]:
        problems = super().config_problems(config)
        base_url = str(config.get("base_url") or "")
        if base_url and not base_url.startswith(("http://", "https://")):
            problems["base_url"] = _("Enter an http:// or https:// address.")
        return problems

    def api_base_url(self, inbox: Inbox) -> str:
        return str(inbox.config.get("base_url") or "").rstrip("/")

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        secret = str(inbox.config.get("webhook_secret") or "")
        if not secret:
            return  # the unguessable inbox token in the URL is then the only credential
        signature = request.headers.get("X-Chatwoot-Signature", "")
        timestamp = request.headers.get("X-Chatwoot-Timestamp", "")
        if not signature or not timestamp:
            raise unauthenticated()
        try:
            skew = abs(time.time() - int(timestamp))
        except ValueError as error:
            raise forbidden("The timestamp is not a number.") from error
        if skew > TIMESTAMP_TOLERANCE_SECONDS:
            raise WebhookRejected(403, "stale_timestamp", "The timestamp is too old or in the future.")
        signature = signature.removeprefix("sha256=")
        if not constant_time_equal(signature, hmac_hex(secret, timestamp.encode() + b"." + body)):
            raise forbidden()

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        payload = json_body(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            raise malformed("A Chatwoot event has an event name.")
        event = payload["event"]
        if event == "message_created":
            return [self._message_event(payload)]
        if event == "conversation_status_changed":
            conversation_id = payload.get("display_id") or payload.get("id")
            status = payload.get("status")
            if conversation_id is None or status not in STATUSES:
                raise malformed("A status change has a conversation id and a known status.")
            return [
                InboundEvent(
                    f"status:{conversation_id}:{status}:{body_hash(body)[:16]}",
                    "status",
                    {"thread": str(conversation_id), "status": status},
                )
            ]
        return [InboundEvent(f"{event}:{body_hash(body)}", "ignored", {"reason": event})]

    def _message_event(self, payload: dict[str, Any]) -> InboundEvent:
        message_id = payload.get("id")
        conversation = payload.get("conversation")
        if message_id is None or not isinstance(conversation, dict):
            raise malformed("A message has an id and a conversation.")
        conversation_id = conversation.get("display_id") or conversation.get("id")
        if conversation_id is None:
            raise malformed("A message's conversation has an id.")
        key = f"message:{message_id}"
        found = payload.get("sender")
        sender: dict[str, Any] = found if isinstance(found, dict) else {}
        sender_type = str(sender.get("type") or "").lower()
        if (
            payload.get("message_type") not in INCOMING
            or payload.get("private")
            or (sender_type and sender_type != "contact")
        ):
            return InboundEvent(key, "ignored", {"reason": "not a contact's public message"})
        text = text_of(payload.get("content"))
        attachments = [
            attachment(
                str(found.get("file_type")),
                url=found.get("data_url"),
                latitude=found.get("coordinates_lat"),
                longitude=found.get("coordinates_long"),
            )
            for found in payload.get("attachments") or []
            if isinstance(found, dict)
        ]
        if not text and not attachments:
            return InboundEvent(key, "ignored", {"reason": "no text"})
        contact_id = sender.get("id")
        if contact_id is None:
            contact_id = ((conversation.get("meta") or {}).get("sender") or {}).get("id")
        return InboundEvent(
            key,
            "message",
            {
                "thread": str(conversation_id),
                "message_id": str(message_id),
                "text": text,
                "attachments": attachments,
                "contact": {
                    "external_id": str(contact_id if contact_id is not None else f"conversation-{conversation_id}"),
                    "name": text_of(sender.get("name"), 200),
                    "email": text_of(sender.get("email"), 254),
                    "phone": text_of(sender.get("phone_number"), 32),
                },
                "metadata": {"chatwoot_contact_id": contact_id, "chatwoot_conversation_id": conversation_id},
            },
        )

    def _account_url(self, inbox: Inbox, path: str) -> str:
        return f"{self.api_base_url(inbox)}/api/v1/accounts/{inbox.config.get('account_id')}/{path}"

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        headers = {"api_access_token": str(inbox.config.get("api_access_token", ""))}
        thread = f"conversations/{conversation.external_id}"
        if outbox.kind == "labels":
            return OutboundRequest(
                "POST",
                self._account_url(inbox, f"{thread}/labels"),
                headers,
                json={"labels": list(outbox.payload.get("labels", []))},
            )
        if outbox.kind == "attributes":
            contact_id = outbox.payload.get("contact_id")
            return OutboundRequest(
                "PUT",
                self._account_url(inbox, f"contacts/{contact_id}"),
                headers,
                json={"custom_attributes": dict(outbox.payload.get("custom_attributes", {}))},
            )
        return OutboundRequest(
            "POST",
            self._account_url(inbox, f"{thread}/messages"),
            headers,
            json={
                "content": message.content if message else "",
                "message_type": "outgoing",
                "private": outbox.kind == "note",
            },
        )

    def provider_message_id(self, response_body: Any) -> str:
        if isinstance(response_body, dict) and response_body.get("id") is not None:
            return str(response_body["id"])
        return ""
