"""Helpers of the channel tests: inboxes pointed at the fake providers, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from conversations.channels.twilio import twilio_signature
from conversations.models import Conversation, Inbox
from tests import fake_providers as fp

APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
TELEGRAM_SECRET = "telegram-secret-token"
CHATWOOT_SECRET = "chatwoot-webhook-secret"


def channel_config(channel: str, base_url: str) -> dict[str, Any]:
    return {
        "whatsapp": {
            "phone_number_id": "106540352242922",
            "access_token": fp.ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "api_base_url": base_url,
        },
        "instagram": {
            "page_id": "17841400000000000",
            "access_token": fp.ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "api_base_url": base_url,
        },
        "telegram": {"bot_token": fp.BOT_TOKEN, "secret_token": TELEGRAM_SECRET, "api_base_url": base_url},
        "sms": {
            "account_sid": fp.TWILIO_ACCOUNT,
            "auth_token": fp.TWILIO_TOKEN,
            "from_number": "+15005550006",
            "api_base_url": base_url,
        },
        "email": {"from_address": "shop@alpha.example"},
        "chatwoot": {
            "base_url": base_url,
            "api_access_token": fp.CHATWOOT_TOKEN,
            "account_id": 7,
            "webhook_secret": CHATWOOT_SECRET,
        },
    }[channel]


def make_inbox(tenant: Any, channel: str, base_url: str = "http://127.0.0.1:9", **extra: Any) -> Inbox:
    config = {**channel_config(channel, base_url), **extra}
    return Inbox.objects.for_tenant(tenant).create(  # type: ignore[no-any-return]
        tenant=tenant, name=f"{channel} inbox", channel_type=channel, config=config
    )


def make_conversation(tenant: Any, inbox: Inbox, external_id: str, **fields: Any) -> Conversation:
    return Conversation.objects.for_tenant(tenant).create(  # type: ignore[no-any-return]
        tenant=tenant, inbox=inbox, kind=Conversation.Kind.CUSTOMER, external_id=external_id, **fields
    )


def meta_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"HTTP_X_HUB_SIGNATURE_256": f"sha256={signature}"}


def chatwoot_headers(body: bytes, secret: str = CHATWOOT_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_CHATWOOT_SIGNATURE": f"sha256={signature}", "HTTP_X_CHATWOOT_TIMESTAMP": stamp}


def twilio_headers(url: str, params: dict[str, str], token: str = fp.TWILIO_TOKEN) -> dict[str, str]:
    return {"HTTP_X_TWILIO_SIGNATURE": twilio_signature(token, url, list(params.items()))}


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def whatsapp_text(message_id: str, sender: str, text: str, name: str = "Noura") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": "1750000000",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def whatsapp_status(message_id: str, status: str, recipient: str = "966500000001") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                            "statuses": [
                                {
                                    "id": message_id,
                                    "status": status,
                                    "timestamp": "1750000100",
                                    "recipient_id": recipient,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def chatwoot_message(
    message_id: int,
    conversation_id: int,
    content: str,
    *,
    message_type: str = "incoming",
    private: bool = False,
    sender_type: str = "contact",
) -> dict[str, Any]:
    return {
        "event": "message_created",
        "id": message_id,
        "content": content,
        "created_at": "2026-11-21T20:00:00.000Z",
        "message_type": message_type,
        "content_type": "text",
        "content_attributes": {},
        "source_id": None,
        "private": private,
        "sender": {
            "id": 31,
            "name": "Huda",
            "email": "huda@example.com",
            "phone_number": "+966500000031",
            "type": sender_type,
        },
        "contact": {"id": 31, "name": "Huda"},
        "conversation": {
            "id": conversation_id,
            "display_id": conversation_id,
            "status": "open",
            "inbox_id": 3,
            "meta": {"sender": {"id": 31, "name": "Huda", "type": "contact"}},
        },
        "account": {"id": 7, "name": "Alpha"},
        "inbox": {"id": 3, "name": "Website"},
    }


def canned_reply(tenant: Any, conversation: Any, message: Any) -> Any:
    """Stands in for the brain in channel tests: the turn's plumbing, not its answer, is tested."""
    from types import SimpleNamespace

    return SimpleNamespace(content=f"Canned answer to: {message.content}", metadata={}, language="en")


def instagram_messaging(*events: dict[str, Any]) -> dict[str, Any]:
    """An Instagram webhook carrying ``events`` (its ``messaging`` entries)."""
    return {
        "object": "instagram",
        "entry": [{"id": "17841400000000000", "time": 1750000000, "messaging": list(events)}],
    }
