"""message_send_outbound, companion_notify and the outbox, delivered to fake providers on
127.0.0.1 that check the request shape and credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message, OutboxMessage
from conversations.tasks import outbox_deliver_task
from morvo.models import Membership
from tests import fake_providers as fp
from tests.conversations.channel_helpers import canned_reply, make_conversation, make_inbox
from tests.factories import ContactFactory, MembershipFactory, TenantFactory, UserFactory


@pytest.fixture(autouse=True)
def tasks_run_at_once(eager: Any) -> None:
    """Every test here delivers in the test's thread."""


@pytest.fixture
def canned_turns(monkeypatch) -> None:
    monkeypatch.setattr("agents_app.pipeline.handle_turn", canned_reply)


@pytest.fixture(autouse=True)
def no_socket_pushes(monkeypatch) -> list[Any]:
    pushed: list[Any] = []
    monkeypatch.setattr("conversations.realtime.push_message", lambda message: pushed.append(message.pk))
    monkeypatch.setattr("conversations.realtime.push_inbox", lambda conversation: None)
    monkeypatch.setattr("conversations.realtime.push_status", lambda conversation: None)
    return pushed


def whatsapp_conversation(world: Any, providers: Any, **inbox_extra: Any) -> Conversation:
    inbox = make_inbox(world.tenant, "whatsapp", providers.url, **inbox_extra)
    return make_conversation(
        world.tenant, inbox, "966500000001", customer_last_message_at=timezone.now() - timedelta(hours=1)
    )


def outbox_rows(tenant: Any) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.for_tenant(tenant).order_by("id"))


# --- message_send_outbound ------------------------------------------------------------------


def test_outbound_in_the_companion_is_pushed_and_queues_nothing(
    two_tenants, no_socket_pushes, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = services.conversation_start_companion(world.tenant, world.owner)

    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send_outbound(
            world.tenant, conversation, "Your campaign was paused.", metadata={"campaign": 4}, idempotency_key="k-1"
        )

    assert (message.role, message.content, message.client_message_id) == (
        "assistant",
        "Your campaign was paused.",
        "k-1",
    )
    assert message.metadata == {"campaign": 4, "outbound": True}
    assert no_socket_pushes == [message.pk]
    assert outbox_rows(world.tenant) == []
    assert Conversation.objects.for_tenant(world.tenant).get(pk=conversation.pk).unread_for_user == 1


def test_outbound_is_idempotent_on_its_key(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)

    with django_capture_on_commit_callbacks(execute=True):
        first = services.message_send_outbound(
            world.tenant, conversation, "It is back in stock!", idempotency_key="a-1"
        )
    with django_capture_on_commit_callbacks(execute=True):
        second = services.message_send_outbound(
            world.tenant, conversation, "It is back in stock!", idempotency_key="a-1"
        )

    assert first.pk == second.pk
    assert Message.objects.for_tenant(world.tenant).count() == 1
    assert len(outbox_rows(world.tenant)) == 1
    assert len(providers.requests) == 1


def test_outbound_on_whatsapp_is_delivered_through_the_cloud_api(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)

    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send_outbound(world.tenant, conversation, "عاد العطر إلى المخزون")

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", "/v21.0/106540352242922/messages")
    assert request.headers["authorization"] == f"Bearer {fp.ACCESS_TOKEN}"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "966500000001",
        "type": "text",
        "text": {"preview_url": False, "body": "عاد العطر إلى المخزون"},
    }
    [outbox] = outbox_rows(world.tenant)
    assert (outbox.status, outbox.attempts, outbox.provider_message_id) == ("sent", 1, "wamid.FAKE1")
    message.refresh_from_db()
    assert (message.delivery_status, message.external_id) == ("sent", "wamid.FAKE1")


def test_outbound_to_another_tenants_conversation_is_refused_and_writes_nothing(two_tenants, providers):
    conversation = whatsapp_conversation(two_tenants.a, providers)

    with pytest.raises(Conversation.DoesNotExist):
        services.message_send_outbound(two_tenants.b.tenant, conversation, "hello")

    assert Message.objects.all_tenants().count() == 0
    assert OutboxMessage.objects.all_tenants().count() == 0
    assert providers.requests == []


def test_outbound_with_empty_content_is_refused_and_writes_nothing(two_tenants, providers):
    conversation = whatsapp_conversation(two_tenants.a, providers)

    with pytest.raises(services.ChatError):
        services.message_send_outbound(two_tenants.a.tenant, conversation, "   ")

    assert Message.objects.all_tenants().count() == 0
    assert OutboxMessage.objects.all_tenants().count() == 0


# --- companion_notify ---------------------------------------------------------------------


def test_companion_notify_starts_a_companion_conversation_for_the_owner(two_tenants):
    world = two_tenants.a

    message = services.companion_notify(world.tenant, "Campaign 'Eid' paused: CPA too high.", {"campaign": 9})

    assert message is not None
    conversation = message.conversation
    assert (conversation.kind, conversation.staff_user_id, conversation.tenant_id) == (
        "companion",
        world.owner.pk,
        world.tenant.pk,
    )
    assert (message.role, message.content, message.metadata) == (
        "assistant",
        "Campaign 'Eid' paused: CPA too high.",
        {"campaign": 9, "outbound": True},
    )
    assert Conversation.objects.for_tenant(two_tenants.b.tenant).count() == 0


def test_companion_notify_posts_into_the_most_recent_companion_conversation(two_tenants):
    world = two_tenants.a
    older = services.conversation_start_companion(world.tenant, world.owner)
    newer = services.conversation_start_companion(world.tenant, world.owner)
    Conversation.objects.for_tenant(world.tenant).filter(pk=older.pk).update(
        last_activity_at=timezone.now() - timedelta(days=1)
    )
    colleague = UserFactory()
    MembershipFactory(user=colleague, tenant=world.tenant, role=Membership.Role.ADMIN)
    services.conversation_start_companion(world.tenant, colleague)

    message = services.companion_notify(world.tenant, "ROAS fell to 1.2", {})

    assert message is not None and message.conversation_id == newer.pk
    assert Conversation.objects.for_tenant(world.tenant).filter(kind="companion").count() == 3


def test_companion_notify_is_idempotent_on_its_key(two_tenants):
    world = two_tenants.a

    first = services.companion_notify(world.tenant, "Paused.", {"idempotency_key": "decision-5"})
    second = services.companion_notify(world.tenant, "Paused.", {"idempotency_key": "decision-5"})

    assert first is not None and second is not None and first.pk == second.pk
    assert Message.objects.for_tenant(world.tenant).count() == 1


def test_companion_notify_without_an_owner_writes_nothing(db):
    tenant = TenantFactory()

    assert services.companion_notify(tenant, "Paused.", {}) is None
    assert Conversation.objects.for_tenant(tenant).count() == 0


# --- each provider's request ---------------------------------------------------------------


def deliver_reply(world: Any, conversation: Conversation, content: str, capture: Any) -> Message:
    with capture(execute=True):
        return services.message_send_outbound(world.tenant, conversation, content)


def test_telegram_send_message(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "telegram", providers.url), "555001")

    message = deliver_reply(world, conversation, "Hello from Morvo", django_capture_on_commit_callbacks)

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", f"/bot{fp.BOT_TOKEN}/sendMessage")
    assert request.json == {"chat_id": "555001", "text": "Hello from Morvo"}
    message.refresh_from_db()
    assert (message.delivery_status, message.external_id) == ("sent", "555001:1001")


def test_instagram_send_api(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "instagram", providers.url)
    conversation = make_conversation(world.tenant, inbox, "6400000000000001")

    message = deliver_reply(world, conversation, "Welcome!", django_capture_on_commit_callbacks)

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", "/v21.0/17841400000000000/messages")
    assert request.headers["authorization"] == f"Bearer {fp.ACCESS_TOKEN}"
    assert request.json == {
        "recipient": {"id": "6400000000000001"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Welcome!"},
    }
    message.refresh_from_db()
    assert message.external_id == "m_FAKE1"


def test_twilio_messages_resource(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "sms", providers.url), "+966500000002")

    message = deliver_reply(world, conversation, "Your order shipped", django_capture_on_commit_callbacks)

    [request] = providers.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{fp.TWILIO_ACCOUNT}/Messages.json")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {"To": "+966500000002", "From": "+15005550006", "Body": "Your order shipped"}
    message.refresh_from_db()
    assert message.external_id == "SMFAKE" + "1".zfill(30)


def test_chatwoot_reply_note_labels_and_attributes(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "chatwoot", providers.url), "42")
    Message.objects.for_tenant(world.tenant).create(
        tenant=world.tenant, conversation=conversation, role="user", content="hi", metadata={"chatwoot_contact_id": 31}
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.message_send_outbound(world.tenant, conversation, "Hello Huda")
        services.note_add(world.tenant, conversation, world.owner, "VIP customer")
        services.conversation_update(world.tenant, conversation.pk, labels=["VIP", "stock"])
        services.chatwoot_contact_attributes_set(world.tenant, conversation, {"lead_score": 80})

    shapes = [(r.method, r.path, r.headers["api_access_token"], r.json) for r in providers.requests]
    assert shapes == [
        (
            "POST",
            "/api/v1/accounts/7/conversations/42/messages",
            fp.CHATWOOT_TOKEN,
            {"content": "Hello Huda", "message_type": "outgoing", "private": False},
        ),
        (
            "POST",
            "/api/v1/accounts/7/conversations/42/messages",
            fp.CHATWOOT_TOKEN,
            {"content": "VIP customer", "message_type": "outgoing", "private": True},
        ),
        ("POST", "/api/v1/accounts/7/conversations/42/labels", fp.CHATWOOT_TOKEN, {"labels": ["vip", "stock"]}),
        ("PUT", "/api/v1/accounts/7/contacts/31", fp.CHATWOOT_TOKEN, {"custom_attributes": {"lead_score": 80}}),
    ]
    assert [row.status for row in outbox_rows(world.tenant)] == ["sent"] * 4


def test_email_reply_threads_with_the_customers_message(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "email")
    contact = ContactFactory(tenant=world.tenant, email="noura@example.com")
    conversation = make_conversation(world.tenant, inbox, "<root@mail.example>", title="Order 12", contact=contact)
    Message.objects.for_tenant(world.tenant).create(
        tenant=world.tenant,
        conversation=conversation,
        role="user",
        content="Where is it?",
        external_id="<r2@mail.example>",
    )

    message = deliver_reply(world, conversation, "It ships today.", django_capture_on_commit_callbacks)

    [sent] = mail.outbox
    assert (sent.subject, sent.body, sent.from_email, sent.to) == (
        "Re: Order 12",
        "It ships today.",
        "shop@alpha.example",
        ["noura@example.com"],
    )
    assert sent.extra_headers["In-Reply-To"] == "<r2@mail.example>"
    assert sent.extra_headers["References"] == "<root@mail.example> <r2@mail.example>"
    message.refresh_from_db()
    assert message.external_id == sent.extra_headers["Message-ID"]
    assert message.external_id.endswith("@alpha.example>")


# --- retries, dead letters, the window, the rate ------------------------------------------


def test_a_failed_delivery_is_retried_with_backoff_and_then_sent(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)
    providers.fail_next(1, 503)

    before = timezone.now()
    message = deliver_reply(world, conversation, "hello", django_capture_on_commit_callbacks)

    [outbox] = outbox_rows(world.tenant)
    assert (outbox.status, outbox.attempts) == ("pending", 1)
    assert outbox.last_error.startswith("HTTP 503")
    assert before + timedelta(seconds=2) <= outbox.next_attempt_at <= timezone.now() + timedelta(seconds=2)
    assert services.outbox_deliver(world.tenant, outbox.pk) == "skipped"  # not due yet
    OutboxMessage.objects.for_tenant(world.tenant).filter(pk=outbox.pk).update(next_attempt_at=timezone.now())

    assert services.outbox_deliver(world.tenant, outbox.pk) == "sent"
    assert services.outbox_deliver(world.tenant, outbox.pk) == "skipped"  # sent once, never twice
    outbox.refresh_from_db()
    message.refresh_from_db()
    assert (outbox.status, outbox.attempts, message.delivery_status) == ("sent", 2, "sent")
    assert len(providers.requests) == 2


def test_backoff_doubles_and_is_capped():
    assert [services.outbox_backoff_seconds(n) for n in (1, 2, 3, 4, 5, 20)] == [2, 4, 8, 16, 32, 900]


def test_five_failures_make_a_dead_letter_and_a_retry_sends_it(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)
    providers.fail_next(5, 500)
    message = deliver_reply(world, conversation, "hello", django_capture_on_commit_callbacks)
    [outbox] = outbox_rows(world.tenant)
    for _ in range(4):
        OutboxMessage.objects.for_tenant(world.tenant).filter(pk=outbox.pk).update(next_attempt_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            services.outbox_deliver(world.tenant, outbox.pk)

    outbox.refresh_from_db()
    message.refresh_from_db()
    assert (outbox.status, outbox.attempts, message.delivery_status) == ("dead", 5, "failed")
    assert len(providers.requests) == 5

    with django_capture_on_commit_callbacks(execute=True):
        assert services.outbox_retry(world.tenant, outbox.pk) is True

    outbox.refresh_from_db()
    message.refresh_from_db()
    assert (outbox.status, message.delivery_status, message.external_id) == ("sent", "sent", "wamid.FAKE1")
    assert services.outbox_retry(world.tenant, outbox.pk) is False  # only dead letters


def test_a_refused_request_is_a_dead_letter_at_once(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers, access_token="revoked")

    message = deliver_reply(world, conversation, "hello", django_capture_on_commit_callbacks)

    [outbox] = outbox_rows(world.tenant)
    message.refresh_from_db()
    assert (outbox.status, outbox.attempts, message.delivery_status) == ("dead", 1, "failed")
    assert "Invalid OAuth access token" in outbox.last_error


def test_outside_the_whatsapp_window_text_is_not_sent(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)
    Conversation.objects.for_tenant(world.tenant).filter(pk=conversation.pk).update(
        customer_last_message_at=timezone.now() - timedelta(hours=25)
    )
    conversation.refresh_from_db()

    message = deliver_reply(world, conversation, "hello again", django_capture_on_commit_callbacks)

    [outbox] = outbox_rows(world.tenant)
    message.refresh_from_db()
    assert (outbox.status, message.delivery_status) == ("dead", "failed")
    assert outbox.last_error.startswith("outside_24h_window")
    assert providers.requests == []


def test_outside_the_whatsapp_window_the_approved_template_is_sent(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    template = {"name": "back_in_stock", "language": "ar"}
    conversation = whatsapp_conversation(world, providers, template=template)
    Conversation.objects.for_tenant(world.tenant).filter(pk=conversation.pk).update(customer_last_message_at=None)
    conversation.refresh_from_db()

    deliver_reply(world, conversation, "hello again", django_capture_on_commit_callbacks)

    [request] = providers.requests
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "966500000001",
        "type": "template",
        "template": {"name": "back_in_stock", "language": {"code": "ar"}},
    }
    [outbox] = outbox_rows(world.tenant)
    assert (outbox.status, outbox.used_template) == ("sent", "back_in_stock")


def test_the_per_channel_rate_limit_defers_what_is_over_it(
    two_tenants, providers, monkeypatch, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = make_conversation(
        world.tenant, make_inbox(world.tenant, "sms", providers.url, rate_per_second=2), "+966500000003"
    )
    monkeypatch.setattr("time.time", lambda: 1_900_000_000.5)
    for index in range(3):
        deliver_reply(world, conversation, f"message {index}", django_capture_on_commit_callbacks)

    assert [row.status for row in outbox_rows(world.tenant)] == ["sent", "sent", "pending"]
    assert len(providers.requests) == 2
    monkeypatch.setattr("time.time", lambda: 1_900_000_001.5)
    last = outbox_rows(world.tenant)[2]
    OutboxMessage.objects.for_tenant(world.tenant).filter(pk=last.pk).update(next_attempt_at=timezone.now())

    assert services.outbox_deliver(world.tenant, last.pk) == "sent"
    assert [r.form["Body"] for r in providers.requests] == ["message 0", "message 1", "message 2"]


def test_a_turn_reply_in_a_channel_inbox_goes_out_through_the_outbox(
    two_tenants, providers, canned_turns, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "telegram", providers.url), "555002")

    with django_capture_on_commit_callbacks(execute=True):
        user, _ = services.message_post(world.tenant, conversation, content="Hello", role="user")

    reply = Message.objects.for_tenant(world.tenant).get(reply_to=user)
    assert reply.content == "Canned answer to: Hello"
    [request] = providers.requests
    assert request.json == {"chat_id": "555002", "text": "Canned answer to: Hello"}
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"


def test_the_flush_sends_what_a_lost_task_left_behind(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    conversation = whatsapp_conversation(world, providers)
    message = services.message_send_outbound(world.tenant, conversation, "hello")  # its task never ran
    OutboxMessage.objects.for_tenant(world.tenant).update(next_attempt_at=timezone.now() - timedelta(minutes=1))

    assert services.outbox_flush(two_tenants.b.tenant) == 0
    assert services.outbox_flush(world.tenant) == 1
    assert services.outbox_flush(world.tenant) == 0

    message.refresh_from_db()
    assert message.delivery_status == "sent"
    assert len(providers.requests) == 1


def test_an_agents_answer_and_the_takeover_notice_reach_the_channel(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "telegram", providers.url), "555003")

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_take_over(world.tenant, conversation.pk, world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_reply(world.tenant, conversation, world.owner, "Hi, this is Sara from the shop.")
        services.note_add(world.tenant, conversation, world.owner, "never sent to Telegram")

    texts = [request.json["text"] for request in providers.requests]
    assert texts == [services.TAKEOVER_NOTICE["ar"], "Hi, this is Sara from the shop."]


def test_the_delivery_task_of_another_tenant_sends_nothing(two_tenants, providers):
    conversation = whatsapp_conversation(two_tenants.a, providers)
    services.message_send_outbound(two_tenants.a.tenant, conversation, "hello")  # no commit: not delivered
    [row] = outbox_rows(two_tenants.a.tenant)

    assert outbox_deliver_task.apply(args=(two_tenants.b.tenant.pk, row.pk)).get() == "skipped"

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    assert providers.requests == []
