"""Inbound webhooks of every channel: verification, parsing, deduplication, the turn and its
reply through the fake providers, receipts, and refusals that store nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message, OutboxMessage, WebhookEvent
from conversations.tasks import webhook_event_process_task
from crm.models import Contact
from morvo.celery import app as celery_app
from tests import fake_providers as fp
from tests.conversations.channel_helpers import (
    CHATWOOT_SECRET,
    TELEGRAM_SECRET,
    VERIFY_TOKEN,
    basic_auth,
    canned_reply,
    chatwoot_headers,
    chatwoot_message,
    dumps,
    instagram_messaging,
    make_conversation,
    make_inbox,
    meta_headers,
    twilio_headers,
    whatsapp_status,
    whatsapp_text,
)


@pytest.fixture(autouse=True)
def english(settings) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def tasks_run_at_once(monkeypatch) -> Any:
    monkeypatch.setattr("agents_app.pipeline.handle_turn", canned_reply)
    monkeypatch.setattr("conversations.realtime.push_message", lambda message: None)
    monkeypatch.setattr("conversations.realtime.push_inbox", lambda conversation: None)
    monkeypatch.setattr("conversations.realtime.push_status", lambda conversation: None)
    monkeypatch.setattr("conversations.realtime.push_typing", lambda conversation, role: None)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def post(url: str, body: bytes, capture: Any, content_type: str = "application/json", **headers: str) -> Any:
    with capture(execute=True):
        return Client().post(url, body, content_type=content_type, **headers)


def url_of(inbox: Any) -> str:
    return f"/webhooks/{inbox.channel_type}/{inbox.secret}/"


def nothing_stored() -> None:
    assert WebhookEvent.objects.all_tenants().count() == 0
    assert Message.objects.all_tenants().count() == 0
    assert Conversation.objects.all_tenants().count() == 0
    assert Contact.objects.all_tenants().count() == 0


# --- WhatsApp -----------------------------------------------------------------------------


def test_whatsapp_message_becomes_contact_conversation_message_and_a_reply(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(whatsapp_text("wamid.IN1", "966500000001", "هل العطر متوفر؟", name="نورة"))

    response = post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert response.status_code == 200
    assert response.json() == {"ok": True, "accepted": 1}
    contact = Contact.objects.for_tenant(world.tenant).get()
    assert (contact.name, contact.phone) == ("نورة", "+966500000001")
    conversation = Conversation.objects.for_tenant(world.tenant).get()
    assert (conversation.inbox_id, conversation.contact_id, conversation.external_id) == (
        inbox.pk,
        contact.pk,
        "966500000001",
    )
    assert conversation.customer_last_message_at is not None
    user, reply = Message.objects.for_tenant(world.tenant).order_by("id")
    assert (user.role, user.content, user.external_id) == ("user", "هل العطر متوفر؟", "wamid.IN1")
    assert (reply.role, reply.reply_to_id, reply.delivery_status) == ("assistant", user.pk, "sent")
    [request] = providers.requests
    assert request.json["to"] == "966500000001"
    assert request.json["text"]["body"] == "Canned answer to: هل العطر متوفر؟"
    assert WebhookEvent.objects.for_tenant(world.tenant).get().status == "done"
    assert Message.objects.for_tenant(two_tenants.b.tenant).count() == 0


def test_a_retried_webhook_makes_no_second_message_or_reply(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(whatsapp_text("wamid.IN2", "966500000001", "hello"))

    first = post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))
    second = post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert (first.status_code, second.status_code) == (200, 200)
    assert Message.objects.for_tenant(world.tenant).filter(role="user").count() == 1
    assert Message.objects.for_tenant(world.tenant).filter(role="assistant").count() == 1
    assert WebhookEvent.objects.for_tenant(world.tenant).count() == 1
    assert len(providers.requests) == 1


def test_a_second_message_of_the_same_sender_joins_the_conversation(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    for index in range(2):
        body = dumps(whatsapp_text(f"wamid.SEQ{index}", "966500000009", f"message {index}"))
        with django_capture_on_commit_callbacks(execute=True):
            services.webhook_events_record(
                world.tenant,
                inbox,
                __import__("conversations.channels", fromlist=["x"]).adapter_for("whatsapp").parse(inbox, None, body),
            )

    assert Conversation.objects.for_tenant(world.tenant).count() == 1
    assert Contact.objects.for_tenant(world.tenant).count() == 1
    assert Message.objects.for_tenant(world.tenant).filter(role="user").count() == 2


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_signature"),
        ({"HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64}, 403, "bad_signature"),
        ({"HTTP_X_HUB_SIGNATURE_256": "md5=abc"}, 403, "bad_signature"),
    ],
)
def test_whatsapp_bad_or_missing_signature_stores_nothing(two_tenants, headers, status, code):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    body = dumps(whatsapp_text("wamid.X", "966500000001", "hello"))

    response = Client().post(url_of(inbox), body, content_type="application/json", **headers)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    nothing_stored()


def test_a_signature_made_with_another_secret_is_refused(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    body = dumps(whatsapp_text("wamid.X", "966500000001", "hello"))

    response = Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body, "other"))

    assert response.status_code == 403
    nothing_stored()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", dumps({"object": "page"}), dumps({"object": "whatsapp_business_account", "entry": [{}]})],
)
def test_whatsapp_malformed_payload_is_400_and_stores_nothing(two_tenants, body):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")

    response = Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body))

    assert response.status_code == 400
    assert response.json() == {
        "error": {"status": 400, "code": "malformed_payload", "message": "The payload is not what this channel sends."}
    }
    nothing_stored()


def test_unknown_token_or_wrong_channel_is_404(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    body = dumps(whatsapp_text("wamid.X", "966500000001", "hello"))
    client = Client()

    unknown = client.post(
        "/webhooks/whatsapp/not-a-token/", body, content_type="application/json", **meta_headers(body)
    )
    wrong_channel = client.post(f"/webhooks/telegram/{inbox.secret}/", body, content_type="application/json")
    no_such_channel = client.post(f"/webhooks/fax/{inbox.secret}/", body, content_type="application/json")

    for response in (unknown, wrong_channel, no_such_channel):
        assert response.status_code == 404
        assert response.json() == {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
    nothing_stored()


def test_an_inactive_inbox_is_404(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    inbox.is_active = False
    inbox.save()
    body = dumps(whatsapp_text("wamid.X", "966500000001", "hello"))

    response = Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body))

    assert response.status_code == 404
    nothing_stored()


def test_an_oversized_payload_is_413_and_stores_nothing(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    body = dumps(whatsapp_text("wamid.X", "966500000001", "x" * (1024 * 1024 + 10)))

    response = Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    nothing_stored()


def test_whatsapp_verification_challenge(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    client = Client()
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}

    accepted = client.get(url_of(inbox), query)
    refused = client.get(url_of(inbox), {**query, "hub.verify_token": "guess"})

    assert (accepted.status_code, accepted.content) == (200, b"1158201444")
    assert refused.status_code == 403


def test_whatsapp_receipts_move_the_delivery_status_forward_only(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    conversation = make_conversation(world.tenant, inbox, "966500000001", customer_last_message_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send_outbound(world.tenant, conversation, "hello")
    message.refresh_from_db()
    assert (message.external_id, message.delivery_status) == ("wamid.FAKE1", "sent")

    for status in ("delivered", "read", "delivered"):
        body = dumps(whatsapp_status("wamid.FAKE1", status))
        assert post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body)).status_code == 200

    message.refresh_from_db()
    assert message.delivery_status == "read"
    assert message.delivered_at is not None and message.read_at is not None
    assert WebhookEvent.objects.for_tenant(world.tenant).count() == 2  # the repeated "delivered" was a duplicate


def test_a_receipt_before_its_message_waits_and_then_applies(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    body = dumps(whatsapp_status("wamid.LATE", "delivered"))

    post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))

    event = WebhookEvent.objects.for_tenant(world.tenant).get()
    assert (event.status, event.attempts) == ("pending", 1)
    conversation = make_conversation(world.tenant, inbox, "966500000001")
    message = Message.objects.for_tenant(world.tenant).create(
        tenant=world.tenant, conversation=conversation, role="assistant", content="hi", external_id="wamid.LATE"
    )
    assert services.webhook_event_process(world.tenant, event.pk) == "done"
    message.refresh_from_db()
    assert message.delivery_status == "delivered"


def test_a_blocked_contacts_message_is_stored_and_never_answered(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    from crm.services import contact_resolve

    contact = contact_resolve(world.tenant, channel_type="whatsapp", external_id="966500000666")
    Contact.objects.for_tenant(world.tenant).filter(pk=contact.pk).update(blocked=True)
    body = dumps(whatsapp_text("wamid.SPAM", "966500000666", "spam spam"))

    response = post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert response.status_code == 200
    [message] = Message.objects.for_tenant(world.tenant)
    assert (message.content, message.metadata["blocked"]) == ("spam spam", True)
    assert providers.requests == []
    assert OutboxMessage.objects.for_tenant(world.tenant).count() == 0
    assert list(services.turns_overdue(world.tenant, older_than_seconds=-60)) == []


def test_the_processing_task_of_another_tenant_changes_nothing(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    body = dumps(whatsapp_text("wamid.T", "966500000001", "hello"))
    Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body))  # tasks not run
    event = WebhookEvent.objects.for_tenant(world.tenant).get()

    assert webhook_event_process_task.apply(args=(two_tenants.b.tenant.pk, event.pk)).get() == "missing"

    assert Message.objects.all_tenants().count() == 0
    event.refresh_from_db()
    assert event.status == "pending"


# --- Telegram -----------------------------------------------------------------------------


def telegram_update(update_id: int, text: str = "مرحبا") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 77,
            "from": {"id": 555001, "is_bot": False, "first_name": "Sara", "last_name": "A", "language_code": "ar"},
            "chat": {"id": 555001, "first_name": "Sara", "type": "private"},
            "date": 1750000000,
            "text": text,
        },
    }


def test_telegram_update_runs_a_turn_and_replies(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    body = dumps(telegram_update(9001))

    response = post(
        url_of(inbox), body, django_capture_on_commit_callbacks, HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=TELEGRAM_SECRET
    )

    assert response.status_code == 200
    contact = Contact.objects.for_tenant(world.tenant).get()
    assert (contact.name, contact.language) == ("Sara A", "ar")
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    assert (user.content, user.external_id) == ("مرحبا", "555001:77")
    [request] = providers.requests
    assert request.json == {"chat_id": "555001", "text": "Canned answer to: مرحبا"}


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": "guess"}, 403)])
def test_telegram_without_the_secret_token_stores_nothing(two_tenants, headers, status):
    inbox = make_inbox(two_tenants.a.tenant, "telegram")

    response = Client().post(url_of(inbox), dumps(telegram_update(1)), content_type="application/json", **headers)

    assert response.status_code == status
    nothing_stored()


# --- Instagram / Messenger ----------------------------------------------------------------


def test_instagram_message_echo_and_delivery(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "instagram", providers.url)
    payload = instagram_messaging(
        {
            "sender": {"id": "6400000000000001"},
            "recipient": {"id": "17841400000000000"},
            "timestamp": 1750000000000,
            "message": {"mid": "aWdfZAG1faXRlbToxMjM", "text": "Do you ship to Jeddah?"},
        },
        {
            "sender": {"id": "17841400000000000"},
            "recipient": {"id": "6400000000000001"},
            "timestamp": 1750000000001,
            "message": {"mid": "echo-1", "text": "our own", "is_echo": True},
        },
    )
    body = dumps(payload)

    response = post(url_of(inbox), body, django_capture_on_commit_callbacks, **meta_headers(body))

    assert response.status_code == 200
    assert [m.content for m in Message.objects.for_tenant(world.tenant).filter(role="user")] == [
        "Do you ship to Jeddah?"
    ]
    assert sorted(WebhookEvent.objects.for_tenant(world.tenant).values_list("status", flat=True)) == ["done", "ignored"]
    assert len(providers.requests) == 1
    reply = Message.objects.for_tenant(world.tenant).get(role="assistant")
    assert reply.external_id == "m_FAKE1"
    delivery = dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "17841400000000000",
                    "messaging": [{"sender": {"id": "6400000000000001"}, "delivery": {"mids": ["m_FAKE1"]}}],
                }
            ],
        }
    )
    post(url_of(inbox), delivery, django_capture_on_commit_callbacks, **meta_headers(delivery))
    reply.refresh_from_db()
    assert reply.delivery_status == "delivered"


# --- Twilio SMS ----------------------------------------------------------------------------


def test_twilio_sms_with_a_valid_signature(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "sms", providers.url)
    params = {
        "MessageSid": "SM11111111111111111111111111111111",
        "AccountSid": fp.TWILIO_ACCOUNT,
        "From": "+966500000002",
        "To": "+15005550006",
        "Body": "Is the oud back?",
        "NumMedia": "0",
    }
    url = f"http://testserver{url_of(inbox)}"
    from urllib.parse import urlencode

    body = urlencode(params).encode()

    response = post(
        url_of(inbox),
        body,
        django_capture_on_commit_callbacks,
        content_type="application/x-www-form-urlencoded",
        **twilio_headers(url, params),
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    assert (user.content, user.conversation.external_id) == ("Is the oud back?", "+966500000002")
    [request] = providers.requests
    assert request.form == {"To": "+966500000002", "From": "+15005550006", "Body": "Canned answer to: Is the oud back?"}

    status_params = {"MessageSid": "SMFAKE" + "1".zfill(30), "MessageStatus": "delivered"}
    status_body = urlencode(status_params).encode()
    post(
        url_of(inbox),
        status_body,
        django_capture_on_commit_callbacks,
        content_type="application/x-www-form-urlencoded",
        **twilio_headers(url, status_params),
    )
    assert Message.objects.for_tenant(world.tenant).get(role="assistant").delivery_status == "delivered"


def test_twilio_signature_over_other_params_is_refused(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "sms")
    params = {"MessageSid": "SM1", "From": "+966500000002", "Body": "hi"}
    url = f"http://testserver{url_of(inbox)}"
    from urllib.parse import urlencode

    response = Client().post(
        url_of(inbox),
        urlencode({**params, "Body": "changed"}).encode(),
        content_type="application/x-www-form-urlencoded",
        **twilio_headers(url, params),
    )

    assert response.status_code == 403
    nothing_stored()


# --- E-mail -------------------------------------------------------------------------------


def postmark(message_id: str, text: str, in_reply_to: str = "", references: str = "") -> dict[str, Any]:
    headers = [{"Name": "Message-ID", "Value": message_id}]
    if in_reply_to:
        headers.append({"Name": "In-Reply-To", "Value": in_reply_to})
    if references:
        headers.append({"Name": "References", "Value": references})
    return {
        "From": "Noura <noura@example.com>",
        "FromFull": {"Email": "noura@example.com", "Name": "Noura"},
        "To": "shop@alpha.example",
        "Subject": "Order 12",
        "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "TextBody": text,
        "Headers": headers,
    }


def test_email_json_threads_replies_into_one_conversation(two_tenants, django_capture_on_commit_callbacks):
    from django.core import mail

    world = two_tenants.a
    inbox = make_inbox(world.tenant, "email", webhook_secret="mail-secret")
    auth = basic_auth("postmark", "mail-secret")

    first = dumps(postmark("<first@mail.example>", "Where is my order?"))
    assert post(url_of(inbox), first, django_capture_on_commit_callbacks, **auth).status_code == 200
    [sent] = mail.outbox
    our_id = sent.extra_headers["Message-ID"]
    reply_text = "Thanks!\n\nOn Sat, Nov 21, 2026 Shop wrote:\n> It ships today."
    second = dumps(
        postmark("<second@mail.example>", reply_text, in_reply_to=our_id, references=f"<first@mail.example> {our_id}")
    )
    assert post(url_of(inbox), second, django_capture_on_commit_callbacks, **auth).status_code == 200

    conversation = Conversation.objects.for_tenant(world.tenant).get()
    assert (conversation.external_id, conversation.title) == ("<first@mail.example>", "Order 12")
    users = list(Message.objects.for_tenant(world.tenant).filter(role="user").values_list("content", flat=True))
    assert users == ["Where is my order?", "Thanks!"]
    assert Contact.objects.for_tenant(world.tenant).get().email == "noura@example.com"
    assert len(mail.outbox) == 2
    assert mail.outbox[1].extra_headers["In-Reply-To"] == "<second@mail.example>"


def test_email_without_basic_auth_is_refused(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "email", webhook_secret="mail-secret")
    body = dumps(postmark("<x@mail.example>", "hi"))

    missing = Client().post(url_of(inbox), body, content_type="application/json")
    wrong = Client().post(url_of(inbox), body, content_type="application/json", **basic_auth("postmark", "guess"))

    assert (missing.status_code, wrong.status_code) == (401, 403)
    nothing_stored()


def test_raw_mime_email(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "email")
    raw = (
        "From: Khalid <khalid@example.com>\r\nTo: shop@alpha.example\r\nSubject: =?utf-8?b?2LPYpNin2YQ=?=\r\n"
        "Message-ID: <mime-1@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nهل لديكم عود كمبودي؟\r\n"
    ).encode()

    response = post(url_of(inbox), raw, django_capture_on_commit_callbacks, content_type="message/rfc822")

    assert response.status_code == 200
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    assert (user.content, user.external_id) == ("هل لديكم عود كمبودي؟", "<mime-1@mail.example>")
    assert user.conversation.title == "سؤال"


def test_email_in_another_content_type_is_400(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "email")

    response = Client().post(url_of(inbox), b"<xml/>", content_type="application/xml")

    assert response.status_code == 400
    nothing_stored()


# --- Chatwoot -----------------------------------------------------------------------------


def chatwoot_post(inbox: Any, payload: dict[str, Any], capture: Any, **overrides: Any) -> Any:
    body = dumps(payload)
    headers = chatwoot_headers(body, **overrides)
    return post(f"/webhooks/chatwoot/{inbox.secret}/", body, capture, **headers)


def test_chatwoot_incoming_message_runs_a_turn_and_replies_through_the_api(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "chatwoot", providers.url)

    response = chatwoot_post(inbox, chatwoot_message(900, 42, "Do you have oud?"), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    assert (user.content, user.conversation.external_id, user.metadata["chatwoot_contact_id"]) == (
        "Do you have oud?",
        "42",
        31,
    )
    contact = Contact.objects.for_tenant(world.tenant).get()
    assert (contact.name, contact.email, contact.phone) == ("Huda", "huda@example.com", "+966500000031")
    [request] = providers.requests
    assert (request.method, request.path) == ("POST", "/api/v1/accounts/7/conversations/42/messages")
    assert request.headers["api_access_token"] == fp.CHATWOOT_TOKEN
    assert request.json == {
        "content": "Canned answer to: Do you have oud?",
        "message_type": "outgoing",
        "private": False,
    }


@pytest.mark.parametrize(
    "payload",
    [
        chatwoot_message(901, 42, "our reply", message_type="outgoing", sender_type="agent_bot"),
        chatwoot_message(902, 42, "a private note", private=True, sender_type="user"),
        chatwoot_message(903, 42, "agent writes", message_type="outgoing", sender_type="user"),
        chatwoot_message(904, 42, "Conversation was resolved", message_type="activity"),
        {"event": "conversation_created", "id": 42},
    ],
)
def test_chatwoot_outgoing_private_and_other_events_are_ignored(
    two_tenants, providers, payload, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "chatwoot", providers.url)

    response = chatwoot_post(inbox, payload, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert Message.objects.for_tenant(world.tenant).count() == 0
    assert WebhookEvent.objects.for_tenant(world.tenant).get().status == "ignored"
    assert providers.requests == []


def test_chatwoot_status_change_is_mirrored(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "chatwoot")
    conversation = make_conversation(world.tenant, inbox, "42")
    payload = {"event": "conversation_status_changed", "id": 42, "status": "resolved", "changed_attributes": []}

    assert chatwoot_post(inbox, payload, django_capture_on_commit_callbacks).status_code == 200

    conversation.refresh_from_db()
    assert conversation.status == "resolved"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"secret": "guess"}, 403, "bad_signature"),
        ({"timestamp": int(time.time()) - 3600}, 403, "stale_timestamp"),
    ],
)
def test_chatwoot_bad_signature_or_old_timestamp_stores_nothing(
    two_tenants, overrides, status, code, django_capture_on_commit_callbacks
):
    inbox = make_inbox(two_tenants.a.tenant, "chatwoot")

    response = chatwoot_post(inbox, chatwoot_message(905, 42, "hi"), django_capture_on_commit_callbacks, **overrides)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    nothing_stored()


def test_chatwoot_unsigned_is_401_when_a_secret_is_set_and_accepted_without_one(
    two_tenants, django_capture_on_commit_callbacks
):
    signed_inbox = make_inbox(two_tenants.a.tenant, "chatwoot")
    body = dumps(chatwoot_message(906, 42, "hi"))

    refused = Client().post(f"/webhooks/chatwoot/{signed_inbox.secret}/", body, content_type="application/json")
    assert refused.status_code == 401
    nothing_stored()

    signed_inbox.config = {**signed_inbox.config, "webhook_secret": ""}
    signed_inbox.save()
    accepted = post(f"/webhooks/chatwoot/{signed_inbox.secret}/", body, django_capture_on_commit_callbacks)
    assert accepted.status_code == 200
    assert Message.objects.for_tenant(two_tenants.a.tenant).filter(role="user").count() == 1


def test_chatwoot_secret_is_checked(two_tenants):
    assert CHATWOOT_SECRET  # the helpers sign with the inbox's configured secret
    inbox = make_inbox(two_tenants.a.tenant, "chatwoot")
    assert inbox.config["webhook_secret"] == CHATWOOT_SECRET
    assert json.loads(dumps({"a": 1})) == {"a": 1}


def test_refusals_are_in_arabic_for_an_arabic_caller(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "telegram")

    response = Client().post(
        url_of(inbox), dumps(telegram_update(1)), content_type="application/json", HTTP_ACCEPT_LANGUAGE="ar"
    )

    assert response.json() == {"error": {"status": 401, "code": "missing_signature", "message": "الطلب غير موقَّع."}}
    nothing_stored()


def test_a_batch_of_events_is_processed_each_on_its_own(two_tenants, monkeypatch):
    from conversations.tasks import webhook_events_process_task

    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    for number in range(3):
        body = dumps(whatsapp_text(f"wamid.B{number}", f"96650000000{number}", f"hello {number}"))
        Client().post(url_of(inbox), body, content_type="application/json", **meta_headers(body))  # tasks not run
    first, second, third = WebhookEvent.objects.for_tenant(world.tenant).order_by("id")
    real = services.webhook_event_process

    def failing_second(tenant, event_id):
        if event_id == second.pk:
            raise RuntimeError("provider data we cannot read")
        return real(tenant, event_id)

    monkeypatch.setattr(services, "webhook_event_process", failing_second)
    outcomes = webhook_events_process_task.apply(args=(world.tenant.pk, [first.pk, second.pk, third.pk])).get()

    assert outcomes["failed"] == 1
    assert sum(outcomes.values()) == 3
    assert sorted(Message.objects.for_tenant(world.tenant).values_list("content", flat=True)) == ["hello 0", "hello 2"]
    second.refresh_from_db()
    assert second.status == "pending"  # left for the beat job to retry


def test_the_publisher_gathers_events_per_tenant():
    import queue

    from conversations.channels import dispatch

    # A queue of the test's own: a publisher thread started by an earlier test may be
    # reading the module's.
    events: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for item in [(1, 10), (2, 20), (1, 11), (1, 12), (2, 21)]:
        events.put(item)
    assert dispatch._gather(0.0, events) == {1: [10, 11, 12], 2: [20, 21]}
    events.put((3, 30))
    assert dispatch._gather(0.0, events) == {3: [30]}


def test_after_a_full_publication_the_publisher_does_not_pause(monkeypatch):
    from conversations.channels import dispatch

    class Stop(Exception):
        pass

    full = {1: list(range(dispatch.BATCH_LIMIT - 1)), 2: [500]}
    rounds = [full, full, {1: [900]}, {1: [901]}]
    seen: list[float] = []

    def gather(last_published: float) -> dict[int, list[int]]:
        seen.append(last_published)
        if not rounds:
            raise Stop
        return rounds.pop(0)

    published: list[tuple[int, int]] = []
    monkeypatch.setattr(dispatch, "_gather", gather)
    monkeypatch.setattr(dispatch, "_publish_batch", lambda tenant_id, ids: published.append((tenant_id, len(ids))))
    with pytest.raises(Stop):
        dispatch._run()

    # After each full batch the next gather does not wait out MIN_PUBLISH_INTERVAL (it is
    # told no publication happened); after a partial one it does.
    assert seen[:3] == [0.0, 0.0, 0.0] and seen[3] > 0.0 and seen[4] > 0.0
    assert published[:4] == [(1, dispatch.BATCH_LIMIT - 1), (2, 1), (1, dispatch.BATCH_LIMIT - 1), (2, 1)]


def test_the_publisher_publishes_at_once_after_a_quiet_spell_and_paces_itself_under_a_burst():
    import queue
    import threading
    import time

    from conversations.channels import dispatch

    events: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    # Quiet: the last publication was long ago, so only GATHER_SECONDS are waited.
    events.put((1, 10))
    started = time.monotonic()
    assert dispatch._gather(started - 10, events) == {1: [10]}
    assert time.monotonic() - started < dispatch.MIN_PUBLISH_INTERVAL

    # Busy: a publication just happened; events arriving within MIN_PUBLISH_INTERVAL of it
    # go out together, in one task.
    def later() -> None:
        time.sleep(dispatch.MIN_PUBLISH_INTERVAL / 2)
        events.put((1, 12))

    events.put((1, 11))
    sender = threading.Thread(target=later)
    started = time.monotonic()
    sender.start()
    assert dispatch._gather(started, events) == {1: [11, 12]}
    sender.join()
    assert time.monotonic() - started >= dispatch.MIN_PUBLISH_INTERVAL * 0.9
