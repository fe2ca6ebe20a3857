"""E-mail: inbound as the parsed JSON inbound-mail services post (Postmark's ``From``,
``Subject``, ``TextBody``, ``MessageID``, ``Headers``; Mailgun's ``sender``, ``subject``,
``body-plain``, ``Message-Id``, ``In-Reply-To``, ``References``; SendGrid's ``from``,
``subject``, ``text``, ``headers``) or as raw MIME (``Content-Type: message/rfc822``).
Replies thread by Message-ID, In-Reply-To and References.

The inbox token in the URL is the credential; with ``webhook_secret`` set, the request must
also carry HTTP basic auth with that password (what Postmark and Mailgun put in the URL you
give them). Outbound goes over SMTP (``smtp_host``… in the config, else Morvo's own mail
settings), with In-Reply-To and References so the customer's mail client threads the reply.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.message import EmailMessage as MimeMessage
from email.utils import getaddresses, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

from conversations.channels.base import (
    Channel,
    DeliveryError,
    InboundEvent,
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

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
QUOTE_MARKERS = re.compile(r"^(On .+ wrote:|في .+ كتب:|-----Original Message-----|>)", re.MULTILINE)


def message_ids(value: Any) -> list[str]:
    """Every ``<id>`` in a header value, in order."""
    return MESSAGE_ID.findall(value) if isinstance(value, str) else []


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything before the quoted original."""
    match = QUOTE_MARKERS.search(text)
    stripped = text[: match.start()] if match else text
    return stripped.strip() or text.strip()


def _headers_dict(headers: Any) -> dict[str, str]:
    if isinstance(headers, list):  # Postmark: [{"Name": …, "Value": …}]
        return {
            str(item.get("Name", "")).lower(): str(item.get("Value", "")) for item in headers if isinstance(item, dict)
        }
    if isinstance(headers, str):  # SendGrid: the raw header block
        parsed = email.message_from_string(headers + "\n\n", policy=email.policy.default)
        return {name.lower(): str(value) for name, value in parsed.items()}
    if isinstance(headers, dict):
        return {str(name).lower(): str(value) for name, value in headers.items()}
    return {}


class EmailChannel(Channel):
    channel_type = "email"
    max_body_bytes = 10 * 1024 * 1024
    default_rate_per_second = 10
    required_config = ("from_address",)
    sends_over_http = False  # SMTP, threaded with the customer's last message (read here)

    def verify(self, inbox: Inbox, request: HttpRequest, body: bytes) -> None:
        secret = str(inbox.config.get("webhook_secret") or "")
        if not secret:
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise unauthenticated("Basic authentication is required.")
        try:
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as error:
            raise forbidden("The credentials are not valid.") from error
        if not constant_time_equal(password, secret):
            raise forbidden("The credentials are not valid.")

    def parse(self, inbox: Inbox, request: HttpRequest, body: bytes) -> list[InboundEvent]:
        content_type = request.content_type or ""
        if content_type in ("message/rfc822", "text/plain"):
            fields = self._from_mime(body)
        elif content_type == "application/json":
            payload = json_body(body)
            if not isinstance(payload, dict):
                raise malformed()
            fields = self._from_json(payload)
        else:
            raise malformed("Post parsed e-mail as application/json or raw MIME as message/rfc822.")
        return [self._event(inbox, **fields)]

    def _from_json(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = _headers_dict(payload.get("Headers") or payload.get("headers"))

        def pick(*names: str) -> str:
            for name in names:
                value = payload.get(name)
                if isinstance(value, str) and value.strip():
                    return value
                if name.lower() in headers and headers[name.lower()].strip():
                    return headers[name.lower()]
            return ""

        found = payload.get("FromFull")
        from_full: dict[str, Any] = found if isinstance(found, dict) else {}
        sender = str(from_full.get("Email") or "") or pick("From", "from", "sender")
        name = str(from_full.get("Name") or "")
        text = pick("StrippedTextReply", "stripped-text", "TextBody", "body-plain", "text")
        return {
            "sender": sender,
            "name": name,
            "subject": pick("Subject", "subject"),
            "text": text,
            # Postmark's own "MessageID" is not the Message-ID header: the header comes first.
            "message_id": pick("Message-ID", "Message-Id", "message_id", "MessageID"),
            "in_reply_to": pick("In-Reply-To", "in_reply_to"),
            "references": pick("References", "references"),
        }

    def _from_mime(self, body: bytes) -> dict[str, Any]:
        parsed = email.message_from_bytes(body, policy=email.policy.default)
        if not isinstance(parsed, MimeMessage) or not parsed.get("From") or not parsed.get("Message-ID"):
            raise malformed("Raw MIME needs From and Message-ID headers.")
        part = parsed.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        return {
            "sender": str(parsed.get("From", "")),
            "name": "",
            "subject": str(parsed.get("Subject", "")),
            "text": text if isinstance(text, str) else "",
            "message_id": str(parsed.get("Message-ID", "")),
            "in_reply_to": str(parsed.get("In-Reply-To", "")),
            "references": str(parsed.get("References", "")),
        }

    def _event(
        self,
        inbox: Inbox,
        *,
        sender: str,
        name: str,
        subject: str,
        text: str,
        message_id: str,
        in_reply_to: str,
        references: str,
    ) -> InboundEvent:
        display, address = parseaddr(sender)
        address = address.strip().lower()
        if "@" not in address:
            raise malformed("The sender is not an e-mail address.")
        ids = message_ids(message_id) or ([f"<{message_id.strip()}>"] if message_id.strip() else [])
        if not ids:
            raise malformed("An e-mail has a Message-ID.")
        own = ids[0]
        # Most recent first: In-Reply-To, then References from the newest back to the root.
        refs = list(dict.fromkeys([*message_ids(in_reply_to), *reversed(message_ids(references))]))
        cleaned = strip_quoted(text)
        if not cleaned:
            return InboundEvent(f"message:{own}", "ignored", {"reason": "empty"})
        return InboundEvent(
            f"message:{own}",
            "message",
            {
                "thread": own,
                "message_id": own,
                "references": refs,
                "subject": text_of(subject, 200),
                "text": cleaned[:4000],
                "contact": {"external_id": address, "email": address, "name": text_of(name or display, 200)},
            },
        )

    def deliver(self, inbox: Inbox, conversation: Conversation, outbox: OutboxMessage, message: Message | None) -> str:
        from django.core.mail import EmailMessage, get_connection

        from conversations.models import Message as MessageModel

        config = inbox.config
        customer = self._customer_address(conversation)
        if not customer:
            raise DeliveryError("The conversation has no customer address.", permanent=True)
        latest = (
            MessageModel.objects.for_tenant(conversation.tenant)
            .filter(conversation=conversation, role=MessageModel.Role.USER)
            .exclude(external_id="")
            .order_by("-id")
            .first()
        )
        references = [conversation.external_id] if conversation.external_id else []
        if latest is not None and latest.external_id not in references:
            references.append(latest.external_id)
        domain = str(config.get("from_address", "")).rpartition("@")[2] or "morvo.local"
        own_id = make_msgid(domain=domain)
        subject = conversation.title or ""
        headers = {"Message-ID": own_id}
        if references:
            headers["In-Reply-To"] = references[-1]
            headers["References"] = " ".join(references)
            if subject and not subject.lower().startswith("re:"):
                subject = f"Re: {subject}"
        connection = None
        if config.get("smtp_host"):
            connection = get_connection(
                "django.core.mail.backends.smtp.EmailBackend",
                host=config["smtp_host"],
                port=int(config.get("smtp_port") or 587),
                username=config.get("smtp_username") or None,
                password=config.get("smtp_password") or None,
                use_tls=bool(config.get("smtp_use_tls", True)),
                timeout=10,
            )
        mail = EmailMessage(
            subject=subject or str(config.get("default_subject") or inbox.name),
            body=message.content if message else "",
            from_email=str(config["from_address"]),
            to=[customer],
            headers=headers,
            connection=connection,
        )
        try:
            mail.send()
        except OSError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from error
        return own_id

    def _customer_address(self, conversation: Conversation) -> str:
        contact = conversation.contact
        address = getattr(contact, "email", "") if contact is not None else ""
        if address:
            return str(address)
        addresses = getaddresses([conversation.title or ""])
        return addresses[0][1] if addresses and "@" in addresses[0][1] else ""
