"""Channel adapters, one module per provider (see ``base.Channel``)."""

from __future__ import annotations

from conversations.channels.base import Channel
from conversations.channels.chatwoot import ChatwootChannel
from conversations.channels.email import EmailChannel
from conversations.channels.instagram import InstagramChannel
from conversations.channels.telegram import TelegramChannel
from conversations.channels.twilio import TwilioChannel
from conversations.channels.whatsapp import WhatsAppChannel

ADAPTERS: dict[str, Channel] = {
    adapter.channel_type: adapter
    for adapter in (
        WhatsAppChannel(),
        TelegramChannel(),
        InstagramChannel(),
        TwilioChannel(),
        EmailChannel(),
        ChatwootChannel(),
    )
}


def adapter_for(channel_type: str) -> Channel | None:
    """The adapter of a channel inbox; None for the companion, the web chat and the API."""
    return ADAPTERS.get(channel_type)
