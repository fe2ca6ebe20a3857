"""Telegram Bot API.

Inbound: an ``Update`` (``{"update_id": …, "message": {"message_id": …, "from": {…}, "chat":
{"id": …}, "text": …}}``), verified by the ``X-Telegram-Bot-Api-Secret-Token`` header set with
``setWebhook(secret_token=…)``. Outbound: ``POST {api}/bot<token>/sendMessage`` with
``{"chat_id": …, "text": …}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.channels.base import (
    Channel,
    InboundEvent,
    OutboundRequest,
    attachment,
    constant_time_equal,
    forbidden,
    json_body,
    malformed,
    text_of,
    unauthenticated,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from conversations.models import Conversation, Inbox, Message, OutboxMessage


class TelegramChannel(Channel):
    channel_type = "telegram"
    default_rate_per_second = 30
    default_api_base_url = "https://api.telegram.org"
    required_config = ("bot_token", "secret_token")

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        header = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not header:
            raise unauthenticated()
        expected = str(inbox.config.get("secret_token") or "")
        if not expected or not constant_time_equal(header, expected):
            raise forbidden("The secret token does not match.")

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        update = json_body(body)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise malformed("An update has an update_id.")
        message = update.get("message") or update.get("edited_message")
        if not isinstance(message, dict):
            return [InboundEvent(f"update:{update['update_id']}", "ignored", {})]
        chat = message.get("chat")
        if not isinstance(chat, dict) or chat.get("id") is None or message.get("message_id") is None:
            raise malformed("A message has a chat and a message_id.")
        chat_id = str(chat["id"])
        text = text_of(message.get("text")) or text_of(message.get("caption"))
        attachments = _attachments(message)
        if (not text and not attachments) or "edited_message" in update:
            return [InboundEvent(f"update:{update['update_id']}", "ignored", {})]
        found = message.get("from")
        sender: dict[str, Any] = found if isinstance(found, dict) else {}
        name = " ".join(part for part in (sender.get("first_name"), sender.get("last_name")) if part)
        message_id = f"{chat_id}:{message['message_id']}"
        return [
            InboundEvent(
                f"message:{message_id}",
                "message",
                {
                    "thread": chat_id,
                    "message_id": message_id,
                    "text": text,
                    "attachments": attachments,
                    "contact": {
                        "external_id": str(sender.get("id") or chat_id),
                        "name": text_of(name, 200),
                        "language": text_of(sender.get("language_code"), 2),
                    },
                },
            )
        ]

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        return OutboundRequest(
            "POST",
            f"{self.api_base_url(inbox)}/bot{inbox.config.get('bot_token', '')}/sendMessage",
            json={"chat_id": conversation.external_id, "text": message.content if message else ""},
        )

    def provider_message_id(self, response_body: Any) -> str:
        if isinstance(response_body, dict) and isinstance(response_body.get("result"), dict):
            result = response_body["result"]
            chat = (result.get("chat") or {}).get("id", "")
            return f"{chat}:{result.get('message_id')}" if chat != "" else str(result.get("message_id") or "")
        return ""


def _attachments(message: dict[str, Any]) -> list[dict[str, str]]:
    """What a Telegram message carries besides text, by the Bot API's ``file_id`` (fetched
    with ``getFile``): the largest size of a photo, a voice note, a file, a location…"""
    photo = message.get("photo")
    if isinstance(photo, list) and photo and isinstance(photo[-1], dict):
        return [attachment("image", id=photo[-1].get("file_id"))]
    for key, kind in (
        ("voice", "voice"),
        ("audio", "audio"),
        ("video", "video"),
        ("video_note", "video"),
        ("animation", "video"),
        ("document", "document"),
        ("sticker", "sticker"),
    ):
        media = message.get(key)
        if isinstance(media, dict):
            return [
                attachment(
                    kind, id=media.get("file_id"), mime_type=media.get("mime_type"), filename=media.get("file_name")
                )
            ]
    location = message.get("location")
    if isinstance(location, dict):
        return [attachment("location", latitude=location.get("latitude"), longitude=location.get("longitude"))]
    card = message.get("contact")
    if isinstance(card, dict):
        name = " ".join(part for part in (card.get("first_name"), card.get("last_name")) if part)
        return [attachment("contact", name=name, phone=card.get("phone_number"))]
    return []
