"""WhatsApp Cloud API.

Inbound: ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {"metadata": {...}, "contacts": [...], "messages": [...], "statuses":
[...]}}]}]}``. Outbound: ``POST {graph}/{version}/{phone-number-id}/messages`` with a bearer
token; a text inside the customer-service window, a template outside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conversations.channels.base import InboundEvent, OutboundRequest, attachment, json_body, malformed, text_of
from conversations.channels.meta import MetaChannel

if TYPE_CHECKING:
    from django.http import HttpRequest

    from conversations.models import Conversation, Inbox, Message, OutboxMessage

RECEIPT_STATUSES = {"sent", "delivered", "read", "failed"}


def _timestamp(value: Any) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        return ""


class WhatsAppChannel(MetaChannel):
    channel_type = "whatsapp"
    default_rate_per_second = 80
    required_config = ("phone_number_id", "access_token", "app_secret", "verify_token")

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        payload = json_body(body)
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise malformed()
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise malformed()
        events: list[InboundEvent] = []
        for entry in entries:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise malformed()
            for change in changes:
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    raise malformed()
                events.extend(self._value_events(value))
        return events

    def _value_events(self, value: dict[str, Any]) -> list[InboundEvent]:
        names = {
            str(contact.get("wa_id")): text_of((contact.get("profile") or {}).get("name"), 200)
            for contact in value.get("contacts") or []
            if isinstance(contact, dict)
        }
        events = []
        for item in value.get("messages") or []:
            if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
                raise malformed("A message has no id or sender.")
            sender = str(item["from"])
            kind = item.get("type")
            if kind == "text":
                text = text_of((item.get("text") or {}).get("body"))
            elif kind in ("button", "interactive"):
                text = text_of((item.get("button") or {}).get("text")) or text_of(
                    ((item.get("interactive") or {}).get("button_reply") or {}).get("title")
                )
            else:
                media = item.get(kind) if isinstance(kind, str) else None
                text = text_of(media.get("caption")) if isinstance(media, dict) else ""
            message_id = str(item["id"])
            attachments = _attachments(item)
            if not text and not attachments:
                # A reaction, an order, a system notice, a type the API calls "unsupported".
                events.append(InboundEvent(f"message:{message_id}", "ignored", {"reason": f"type {kind}"}))
                continue
            events.append(
                InboundEvent(
                    f"message:{message_id}",
                    "message",
                    {
                        "thread": sender,
                        "message_id": message_id,
                        "text": text,
                        "attachments": attachments,
                        "sent_at": _timestamp(item.get("timestamp")),
                        "contact": {"external_id": sender, "name": names.get(sender, ""), "phone": f"+{sender}"},
                    },
                )
            )
        for status in value.get("statuses") or []:
            if not isinstance(status, dict) or not status.get("id") or status.get("status") not in RECEIPT_STATUSES:
                raise malformed("A status has no id or an unknown status.")
            errors = status.get("errors") or []
            error = errors[0].get("title", "") if errors and isinstance(errors[0], dict) else ""
            events.append(
                InboundEvent(
                    f"status:{status['id']}:{status['status']}",
                    "receipt",
                    {"message_id": str(status["id"]), "status": status["status"], "error": str(error)},
                )
            )
        return events

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": conversation.external_id,
        }
        if outbox.used_template:
            template = self.template(inbox) or {}
            body["type"] = "template"
            body["template"] = {
                "name": template.get("name", outbox.used_template),
                "language": {"code": template.get("language") or conversation.language or "ar"},
            }
            if template.get("components"):
                body["template"]["components"] = template["components"]
        else:
            body["type"] = "text"
            body["text"] = {"preview_url": False, "body": message.content if message else ""}
        return OutboundRequest(
            "POST",
            self.graph_url(inbox, f"{inbox.config['phone_number_id']}/messages"),
            headers={"Authorization": f"Bearer {inbox.config.get('access_token', '')}"},
            json=body,
        )

    def template(self, inbox: Inbox) -> dict[str, Any] | None:
        """The approved template the inbox may send outside the 24-hour window, if any."""
        template = inbox.config.get("template")
        if isinstance(template, dict) and template.get("name"):
            return template
        return None

    def provider_message_id(self, response_body: Any) -> str:
        messages = response_body.get("messages") if isinstance(response_body, dict) else None
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id") or "")
        return ""


def _attachments(item: dict[str, Any]) -> list[dict[str, str]]:
    """What a WhatsApp message carries besides text: media (by its media id, fetched with the
    Graph API's media endpoint), a location, shared contacts."""
    kind = item.get("type")
    media = item.get(kind) if isinstance(kind, str) else None
    if kind in ("image", "audio", "video", "document", "sticker") and isinstance(media, dict):
        return [
            attachment(
                "voice" if kind == "audio" and media.get("voice") else kind,
                id=media.get("id"),
                mime_type=media.get("mime_type"),
                filename=media.get("filename"),
            )
        ]
    if kind == "location" and isinstance(media, dict):
        return [
            attachment(
                "location",
                latitude=media.get("latitude"),
                longitude=media.get("longitude"),
                name=media.get("name"),
                address=media.get("address"),
            )
        ]
    if kind == "contacts" and isinstance(item.get("contacts"), list):
        return [
            attachment(
                "contact",
                name=(card.get("name") or {}).get("formatted_name"),
                phone=next((phone.get("phone") for phone in card.get("phones") or [] if isinstance(phone, dict)), None),
            )
            for card in item["contacts"]
            if isinstance(card, dict)
        ]
    return []
