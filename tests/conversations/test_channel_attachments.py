"""What customers send besides text — photos, voice notes, files, locations, contacts — on
every channel: stored as the customer's message (never dropped), shown to the team, and
answered with a notice in the customer's language when there are no words to answer."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from conversations import services
from conversations.models import Message, WebhookEvent
from crm.models import Contact
from tests import fake_providers as fp
from tests.conversations.channel_helpers import (
    canned_reply,
    chatwoot_headers,
    chatwoot_message,
    dumps,
    instagram_messaging,
    make_inbox,
    meta_headers,
    twilio_headers,
    whatsapp_text,
)


@pytest.fixture(autouse=True)
def canned_turns(monkeypatch, quiet_realtime, eager) -> None:
    monkeypatch.setattr("agents_app.pipeline.handle_turn", canned_reply)


def post(inbox: Any, body: bytes, capture: Any, content_type: str = "application/json", **headers: str) -> Any:
    with capture(execute=True):
        return Client().post(
            f"/webhooks/{inbox.channel_type}/{inbox.secret}/", body, content_type=content_type, **headers
        )


def whatsapp_message(message_id: str, item: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(whatsapp_text(message_id, "966500000001", "unused"))
    [message] = payload["entry"][0]["changes"][0]["value"]["messages"]
    del message["text"]
    message.update(item)
    return payload


def user_and_reply(tenant: Any) -> tuple[Message, Message | None]:
    user = Message.objects.for_tenant(tenant).get(role="user")
    return user, Message.objects.for_tenant(tenant).filter(reply_to=user).first()


# --- WhatsApp ------------------------------------------------------------------------------


def test_a_whatsapp_photo_without_caption_is_stored_and_answered_with_the_notice(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(
        whatsapp_message(
            "wamid.IMG1", {"type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg"}}
        )
    )

    response = post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert response.status_code == 200
    user, reply = user_and_reply(world.tenant)
    assert (user.content, user.content_type, user.external_id) == ("[image]", "image", "wamid.IMG1")
    assert user.metadata["attachments"] == [{"type": "image", "id": "1479537139650973", "mime_type": "image/jpeg"}]
    assert user.metadata["attachment_only"] is True
    # The tenant speaks Arabic and the customer gave no words: the notice is in Arabic.
    assert reply is not None and reply.content == services.ATTACHMENT_NOTICE["ar"]
    assert reply.metadata["attachment_notice"] is True
    [request] = providers.requests
    assert request.json["text"]["body"] == services.ATTACHMENT_NOTICE["ar"]
    assert WebhookEvent.objects.for_tenant(world.tenant).get().status == "done"


def test_a_whatsapp_photo_with_a_caption_is_answered_from_the_caption(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(
        whatsapp_message(
            "wamid.IMG2",
            {"type": "image", "image": {"id": "m-2", "mime_type": "image/jpeg", "caption": "Do you have this one?"}},
        )
    )

    post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    user, reply = user_and_reply(world.tenant)
    assert (user.content, user.content_type) == ("Do you have this one?", "image")
    assert "attachment_only" not in user.metadata
    assert reply is not None and reply.content == "Canned answer to: Do you have this one?"


@pytest.mark.parametrize(
    ("item", "content", "content_type"),
    [
        (
            {"type": "audio", "audio": {"id": "a-1", "mime_type": "audio/ogg; codecs=opus", "voice": True}},
            "[voice]",
            "voice",
        ),
        (
            {"type": "document", "document": {"id": "d-1", "mime_type": "application/pdf", "filename": "invoice.pdf"}},
            "[document invoice.pdf]",
            "document",
        ),
        (
            {
                "type": "location",
                "location": {"latitude": 24.7116, "longitude": 46.6743, "name": "Kingdom Centre"},
            },
            "[location 24.7116, 46.6743 Kingdom Centre]",
            "location",
        ),
        (
            {
                "type": "contacts",
                "contacts": [{"name": {"formatted_name": "Sara Ali"}, "phones": [{"phone": "+966500000077"}]}],
            },
            "[contact Sara Ali +966500000077]",
            "contact",
        ),
        ({"type": "sticker", "sticker": {"id": "s-1", "mime_type": "image/webp"}}, "[sticker]", "sticker"),
    ],
)
def test_whatsapp_voice_notes_files_locations_contacts_and_stickers_are_kept(
    two_tenants, providers, django_capture_on_commit_callbacks, item, content, content_type
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(whatsapp_message("wamid.M1", item))

    post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    user, reply = user_and_reply(world.tenant)
    assert (user.content, user.content_type) == (content, content_type)
    assert reply is not None and reply.metadata.get("attachment_notice") is True


def test_a_whatsapp_reaction_is_still_ignored(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(whatsapp_message("wamid.R1", {"type": "reaction", "reaction": {"message_id": "x", "emoji": "👍"}}))

    post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert not Message.objects.for_tenant(world.tenant).exists()
    assert WebhookEvent.objects.for_tenant(world.tenant).get().status == "ignored"


def test_the_notice_is_in_the_language_the_customer_wrote_in_before(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    first = dumps(whatsapp_text("wamid.T1", "966500000001", "Hello, is the oud back in stock?"))
    post(inbox, first, django_capture_on_commit_callbacks, **meta_headers(first))
    photo = dumps(whatsapp_message("wamid.T2", {"type": "image", "image": {"id": "m-3"}}))

    post(inbox, photo, django_capture_on_commit_callbacks, **meta_headers(photo))

    notice = Message.objects.for_tenant(world.tenant).filter(role="assistant").order_by("id").last()
    assert notice.content == services.ATTACHMENT_NOTICE["en"]


def test_a_blocked_contacts_photo_is_stored_and_never_answered(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    Contact.objects.for_tenant(world.tenant).create(
        tenant=world.tenant, name="Spam", phone="+966500000001", blocked=True
    )
    from crm.models import ContactIdentity

    ContactIdentity.objects.for_tenant(world.tenant).create(
        tenant=world.tenant,
        contact=Contact.objects.for_tenant(world.tenant).get(),
        channel_type="whatsapp",
        external_id="966500000001",
    )
    body = dumps(whatsapp_message("wamid.B1", {"type": "image", "image": {"id": "m-4"}}))

    post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    user, reply = user_and_reply(world.tenant)
    assert user.content_type == "image" and user.metadata["blocked"] is True
    assert reply is None
    assert providers.requests == []


# --- Telegram, Twilio, Instagram, Chatwoot ----------------------------------------------


def test_a_telegram_photo_keeps_its_largest_size(two_tenants, providers, django_capture_on_commit_callbacks):
    from tests.conversations.channel_helpers import TELEGRAM_SECRET

    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    update = {
        "update_id": 9100,
        "message": {
            "message_id": 78,
            "from": {"id": 555001, "is_bot": False, "first_name": "Sara", "language_code": "en"},
            "chat": {"id": 555001, "type": "private"},
            "date": 1750000000,
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 1280},
            ],
        },
    }

    post(inbox, dumps(update), django_capture_on_commit_callbacks, HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=TELEGRAM_SECRET)

    user, reply = user_and_reply(world.tenant)
    assert (user.content, user.metadata["attachments"]) == ("[image]", [{"type": "image", "id": "large"}])
    assert reply is not None and reply.content == services.ATTACHMENT_NOTICE["en"]  # the sender's language
    [request] = providers.requests
    assert request.json == {"chat_id": "555001", "text": services.ATTACHMENT_NOTICE["en"]}


def test_a_twilio_mms_without_a_body(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "sms", providers.url)
    params = {
        "MessageSid": "MM11111111111111111111111111111111",
        "AccountSid": fp.TWILIO_ACCOUNT,
        "From": "+966500000002",
        "To": "+15005550006",
        "Body": "",
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/png",
    }
    url = f"http://testserver/webhooks/sms/{inbox.secret}/"

    post(
        inbox,
        urlencode(params).encode(),
        django_capture_on_commit_callbacks,
        content_type="application/x-www-form-urlencoded",
        **twilio_headers(url, params),
    )

    user, reply = user_and_reply(world.tenant)
    assert user.metadata["attachments"] == [{"type": "image", "url": params["MediaUrl0"], "mime_type": "image/png"}]
    assert reply is not None and reply.metadata["attachment_notice"] is True


def test_an_instagram_attachment(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "instagram", providers.url)
    payload = instagram_messaging(
        {
            "sender": {"id": "6400000000000001"},
            "recipient": {"id": "17841400000000000"},
            "timestamp": 1750000000000,
            "message": {
                "mid": "aWdfZAG1faXRlbToxMjQ",
                "attachments": [{"type": "audio", "payload": {"url": "https://cdn.example/a.mp4"}}],
            },
        }
    )
    body = dumps(payload)

    post(inbox, body, django_capture_on_commit_callbacks, **meta_headers(body))

    user, _ = user_and_reply(world.tenant)
    assert (user.content, user.metadata["attachments"]) == (
        "[audio]",
        [{"type": "audio", "url": "https://cdn.example/a.mp4"}],
    )


def test_a_chatwoot_attachment_without_content(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "chatwoot", providers.url)
    payload = chatwoot_message(501, 42, "")
    payload["content"] = None
    payload["attachments"] = [{"id": 9, "file_type": "file", "data_url": "https://chatwoot.example/rails/x.pdf"}]
    body = dumps(payload)

    post(inbox, body, django_capture_on_commit_callbacks, **chatwoot_headers(body))

    user, reply = user_and_reply(world.tenant)
    assert (user.content, user.content_type) == ("[document]", "document")
    assert reply is not None and reply.metadata["attachment_notice"] is True
