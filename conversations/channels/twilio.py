"""SMS through Twilio Programmable Messaging.

Inbound and status callbacks are form posts signed with ``X-Twilio-Signature``: base64 of
HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio requested followed by
every POST parameter, sorted by name, as name then value. Behind a proxy the URL Morvo sees may
differ from the one Twilio signed: set ``webhook_url`` in the inbox config to the public one.
Outbound: ``POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
MessagingServiceSid, Body) with HTTP basic auth (AccountSid, AuthToken).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from django.http import HttpResponse
from django.utils.translation import gettext as _

from conversations.channels.base import (
    Channel,
    InboundEvent,
    OutboundRequest,
    attachment,
    constant_time_equal,
    file_kind,
    forbidden,
    malformed,
    text_of,
    unauthenticated,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from conversations.models import Conversation, Inbox, Message, OutboxMessage

RECEIPTS = {"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    payload = url + "".join(f"{name}{value}" for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def form_params(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as error:
        raise malformed("The body is not a form.") from error


class TwilioChannel(Channel):
    channel_type = "sms"
    default_rate_per_second = 1  # a long code sends one segment a second
    default_api_base_url = "https://api.twilio.com"
    required_config = ("account_sid", "auth_token")

    def config_problems(self, config: dict[str, Any]) -> dict[str, str]:
        problems = super().config_problems(config)
        if not config.get("from_number") and not config.get("messaging_service_sid"):
            problems["from_number"] = _("A sender number or a messaging service is required.")
        return problems

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        header = request.headers.get("X-Twilio-Signature", "")
        if not header:
            raise unauthenticated()
        token = str(inbox.config.get("auth_token") or "")
        url = str(inbox.config.get("webhook_url") or request.build_absolute_uri())
        if not token or not constant_time_equal(header, twilio_signature(token, url, form_params(body))):
            raise forbidden()

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        params = dict(form_params(body))
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        if not sid:
            raise malformed("A Twilio callback has a MessageSid.")
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        if status in RECEIPTS and "Body" not in params:
            return [InboundEvent(f"status:{sid}:{status}", "receipt", {"message_id": sid, "status": RECEIPTS[status]})]
        sender = params.get("From", "")
        text = text_of(params.get("Body"))
        if not sender:
            raise malformed("An inbound SMS has a sender.")
        attachments = [
            attachment(file_kind(params.get(f"MediaContentType{index}", "")), url=params.get(f"MediaUrl{index}"),
                       mime_type=params.get(f"MediaContentType{index}"))
            for index in range(min(_media_count(params), 10))
            if params.get(f"MediaUrl{index}")
        ]  # fmt: skip
        if params.get("Latitude") and params.get("Longitude"):
            attachments.append(
                attachment("location", latitude=params["Latitude"], longitude=params["Longitude"],
                           name=params.get("Label"), address=params.get("Address"))
            )  # fmt: skip
        if not text and not attachments:
            return [InboundEvent(f"message:{sid}", "ignored", {})]
        return [
            InboundEvent(
                f"message:{sid}",
                "message",
                {
                    "thread": sender,
                    "message_id": sid,
                    "text": text,
                    "attachments": attachments,
                    "contact": {"external_id": sender, "phone": sender},
                },
            )
        ]

    def acknowledge(self, events: list[InboundEvent]) -> HttpResponse:
        # Twilio reads the answer as TwiML: an empty response sends nothing back by itself.
        return HttpResponse("<?xml version='1.0' encoding='UTF-8'?><Response/>", content_type="text/xml")

    def build_request(
        self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None
    ) -> OutboundRequest:
        config = inbox.config
        data = {"To": conversation.external_id, "Body": message.content if message else ""}
        if config.get("messaging_service_sid"):
            data["MessagingServiceSid"] = str(config["messaging_service_sid"])
        else:
            data["From"] = str(config.get("from_number", ""))
        if config.get("status_callback_url"):
            data["StatusCallback"] = str(config["status_callback_url"])
        account = str(config.get("account_sid", ""))
        return OutboundRequest(
            "POST",
            f"{self.api_base_url(inbox)}/2010-04-01/Accounts/{account}/Messages.json",
            data=data,
            auth=(account, str(config.get("auth_token", ""))),
        )

    def provider_message_id(self, response_body: Any) -> str:
        return str(response_body.get("sid") or "") if isinstance(response_body, dict) else ""


def _media_count(params: dict[str, str]) -> int:
    try:
        return max(0, int(params.get("NumMedia") or 0))
    except ValueError:
        return 0
