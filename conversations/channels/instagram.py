"""Instagram and Messenger through Meta's Graph API (one adapter: the same Messenger
Platform payloads).

Inbound: ``{"object": "page" | "instagram", "entry": [{"id": <page>, "messaging": [{"sender":
{"id": PSID}, "recipient": {...}, "timestamp": …, "message": {"mid": …, "text": …}}]}]}``,
plus ``delivery`` and ``read`` receipts; the page's own echoes are ignored. Outbound:
``POST {graph}/{version}/{page-id}/messages`` with ``{"recipient": {"id": PSID},
"messaging_type": "RESPONSE", "message": {"text": …}}`` and the page access token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.channels.base import InboundEvent, OutboundRequest, attachment, json_body, malformed, text_of
from conversations.channels.meta import MetaChannel

if TYPE_CHECKING:
    from django.http import HttpRequest

    from conversations.models import Conversation, Inbox, Message, OutboxMessage


class InstagramChannel(MetaChannel):
    channel_type = "instagram"
    default_rate_per_second = 10
    required_config = ("page_id", "access_token", "app_secret", "verify_token")

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        payload = json_body(body)
        if not isinstance(payload, dict) or payload.get("object") not in ("page", "instagram"):
            raise malformed()
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise malformed()
        events: list[InboundEvent] = []
        for entry in entries:
            messaging = entry.get("messaging") if isinstance(entry, dict) else None
            if not isinstance(messaging, list):
                raise malformed()
            for item in messaging:
                events.extend(self._messaging_events(item))
        return events

    def _messaging_events(self, item: Any) -> list[InboundEvent]:
        if not isinstance(item, dict) or not isinstance(item.get("sender"), dict):
            raise malformed()
        sender = str(item["sender"].get("id") or "")
        if not sender:
            raise malformed("An event has no sender.")
        if isinstance(item.get("message"), dict):
            message = item["message"]
            mid = str(message.get("mid") or "")
            if not mid:
                raise malformed("A message has no mid.")
            text = text_of(message.get("text"))
            attachments = [
                attachment(
                    str(found.get("type")),
                    url=(found.get("payload") or {}).get("url") if isinstance(found.get("payload"), dict) else None,
                )
                for found in message.get("attachments") or []
                if isinstance(found, dict)
            ]
            if message.get("is_echo") or (not text and not attachments):
                return [InboundEvent(f"message:{mid}", "ignored", {"reason": "echo" if message.get("is_echo") else ""})]
            return [
                InboundEvent(
                    f"message:{mid}",
                    "message",
                    {
                        "thread": sender,
                        "message_id": mid,
                        "text": text,
                        "attachments": attachments,
                        "contact": {"external_id": sender},
                    },
                )
            ]
        if isinstance(item.get("delivery"), dict):
            mids = item["delivery"].get("mids") or []
            return [
                InboundEvent(f"delivery:{mid}", "receipt", {"message_id": str(mid), "status": "delivered"})
                for mid in mids
                if mid
            ]
        if isinstance(item.get("read"), dict):
            watermark = item["read"].get("watermark")
            return [
                InboundEvent(
                    f"read:{sender}:{watermark}",
                    "receipt",
                    {"thread": sender, "watermark": watermark, "status": "read"},
                )
            ]
        return [InboundEvent(f"other:{sender}:{item.get('timestamp')}", "ignored", {})]

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        return OutboundRequest(
            "POST",
            self.graph_url(inbox, f"{inbox.config['page_id']}/messages"),
            headers={"Authorization": f"Bearer {inbox.config.get('access_token', '')}"},
            json={
                "recipient": {"id": conversation.external_id},
                "messaging_type": "RESPONSE",
                "message": {"text": message.content if message else ""},
            },
        )

    def provider_message_id(self, response_body: Any) -> str:
        return str(response_body.get("message_id") or "") if isinstance(response_body, dict) else ""
