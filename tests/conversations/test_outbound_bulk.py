"""messages_send_outbound: many outbound messages in one transaction, the same as sending
them one by one (messages, counts, outbox rows, pushes), in a few statements."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from conversations import services
from conversations.models import Conversation, Message, OutboxMessage
from conversations.services import Outbound
from tests.conversations.channel_helpers import make_conversation, make_inbox


@pytest.fixture
def pushes(monkeypatch) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {"messages": [], "inbox": []}
    monkeypatch.setattr(
        "conversations.realtime.push_messages", lambda messages: seen["messages"].extend(m.pk for m in messages)
    )
    monkeypatch.setattr(
        "conversations.realtime.push_inbox_many",
        lambda conversations: seen["inbox"].extend(c.pk for c in conversations),
    )
    return seen


def channel_and_web(world: Any) -> tuple[list[Conversation], Conversation]:
    telegram = make_inbox(world.tenant, "telegram")
    sms = make_inbox(world.tenant, "sms")
    channel = [make_conversation(world.tenant, telegram, f"5551{n}") for n in range(3)]
    channel += [make_conversation(world.tenant, sms, f"+96650000090{n}") for n in range(2)]
    web = services.conversation_start_visitor(world.tenant, "visitor-1")
    return channel, web


def test_many_messages_are_written_as_one_by_one_would(two_tenants, pushes, django_capture_on_commit_callbacks):
    world = two_tenants.a
    channel, web = channel_and_web(world)
    items = [Outbound(c, f"back in stock {n}", f"k-{n}", {"kind": "stock_alert"}) for n, c in enumerate(channel)]
    items += [Outbound(web, "  back in stock (web)  ", "k-web"), Outbound(channel[0], "a second one", "k-again")]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        messages = services.messages_send_outbound(world.tenant, items)

    assert [m.content for m in messages] == [
        *[f"back in stock {n}" for n in range(5)],
        "back in stock (web)",
        "a second one",
    ]
    stored = {m.pk: m for m in Message.objects.for_tenant(world.tenant)}
    assert set(stored) == {m.pk for m in messages}
    first = stored[messages[0].pk]
    assert (first.role, first.client_message_id, first.metadata) == (
        "assistant",
        "k-0",
        {"kind": "stock_alert", "outbound": True},
    )
    # Channel threads are queued for their provider; the web chat is not.
    assert [stored[m.pk].delivery_status for m in messages] == ["queued"] * 5 + ["sent", "queued"]
    rows = OutboxMessage.objects.for_tenant(world.tenant)
    assert sorted(rows.values_list("message_id", flat=True)) == sorted(m.pk for m in messages if m.pk != messages[5].pk)
    assert set(rows.values_list("kind", "status").distinct()) == {("message", "pending")}
    # Counts and activity, as message_post keeps them.
    conversations = {c.pk: c for c in Conversation.objects.for_tenant(world.tenant)}
    assert conversations[channel[0].pk].unread_for_user == 2
    assert conversations[channel[1].pk].unread_for_user == 1
    assert conversations[web.pk].unread_for_user == 1
    assert conversations[channel[0].pk].last_activity_at == stored[messages[6].pk].created_at
    # One pump per inbox, then the pushes, all after commit.
    pumps = [c for c in callbacks if isinstance(c, services._PumpAfterCommit)]
    assert len(pumps) == 2
    assert pushes == {"messages": [], "inbox": []}
    for callback in callbacks:
        if not isinstance(callback, services._PumpAfterCommit):
            callback()
    assert pushes["messages"] == [m.pk for m in messages]
    assert sorted(pushes["inbox"]) == sorted(item.conversation.pk for item in items)


def test_the_web_message_is_not_queued(two_tenants, pushes):
    world = two_tenants.a
    _, web = channel_and_web(world)
    [message] = services.messages_send_outbound(world.tenant, [Outbound(web, "hello", "k-1")])
    message.refresh_from_db()
    assert message.delivery_status == "sent"  # nothing to queue: it is on the visitor's screen
    assert not OutboxMessage.objects.for_tenant(world.tenant).exists()


def test_a_key_already_sent_returns_its_message_and_writes_nothing_new(two_tenants, pushes):
    world = two_tenants.a
    channel, _ = channel_and_web(world)
    first = services.messages_send_outbound(world.tenant, [Outbound(channel[0], "one", "k-1")])
    again = services.messages_send_outbound(
        world.tenant, [Outbound(channel[0], "one", "k-1"), Outbound(channel[1], "two", "k-2")]
    )

    assert again[0].pk == first[0].pk
    assert Message.objects.for_tenant(world.tenant).count() == 2
    assert OutboxMessage.objects.for_tenant(world.tenant).count() == 2
    assert Conversation.objects.for_tenant(world.tenant).get(pk=channel[0].pk).unread_for_user == 1


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda world, other: Outbound(other, "theirs", "k-x"), id="another-tenants-conversation"),
        pytest.param(lambda world, other: Outbound(world, "   ", "k-x"), id="empty"),
        pytest.param(
            lambda world, other: Outbound(world, "x" * (Message.MAX_CONTENT_LENGTH + 1), "k-x"), id="too-long"
        ),
        pytest.param(lambda world, other: Outbound(world, "same key", "k-1"), id="repeated-key"),
    ],
)
def test_one_bad_item_refuses_the_batch_and_writes_nothing(two_tenants, pushes, bad):
    world = two_tenants.a
    channel, _ = channel_and_web(world)
    other = make_conversation(two_tenants.b.tenant, make_inbox(two_tenants.b.tenant, "telegram"), "999")
    items = [Outbound(channel[0], "fine", "k-1"), bad(channel[0], other)]

    with pytest.raises((services.ChatError, Conversation.DoesNotExist)):
        services.messages_send_outbound(world.tenant, items)

    assert not Message.objects.all_tenants().exists()
    assert not OutboxMessage.objects.all_tenants().exists()
    assert Conversation.objects.for_tenant(world.tenant).get(pk=channel[0].pk).unread_for_user == 0


def test_a_batch_is_a_handful_of_statements(two_tenants, pushes, django_assert_max_num_queries):
    world = two_tenants.a
    inboxes = [make_inbox(world.tenant, channel) for channel in ("telegram", "sms", "whatsapp")]
    conversations = [make_conversation(world.tenant, inboxes[n % 3], f"+9665000010{n:02d}") for n in range(60)]
    conversations = list(Conversation.objects.for_tenant(world.tenant).select_related("inbox"))
    items = [Outbound(c, f"message {n}", f"k-{n}") for n, c in enumerate(conversations)]

    # select the keys, insert the messages, update the conversations, insert the outbox rows,
    # and the two savepoints around them (this test's and its own).
    with django_assert_max_num_queries(8), transaction.atomic():
        services.messages_send_outbound(world.tenant, items)

    assert Message.objects.for_tenant(world.tenant).count() == 60
    assert OutboxMessage.objects.for_tenant(world.tenant).count() == 60


@pytest.mark.django_db(transaction=True)
async def test_group_send_many_reaches_every_socket_of_every_group() -> None:
    from channels.layers import get_channel_layer

    from morvo.realtime import group_send_many

    layer = get_channel_layer()
    first, second, third = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("bulk-a", first)
    await layer.group_add("bulk-a", second)
    await layer.group_add("bulk-b", third)
    try:
        # Listening first: the layer wakes a receiver for what is sent after it listens.
        receivers = {
            channel: [asyncio.create_task(layer.receive(channel)) for _ in range(count)]
            for channel, count in ((first, 1), (second, 1), (third, 1))
        }
        await asyncio.sleep(0.5)
        await sync_to_async(group_send_many)(
            [
                ("bulk-a", {"type": "chat.message", "n": 1}),
                ("bulk-b", {"type": "chat.message", "n": 2}),
                ("bulk-nobody", {"type": "chat.message", "n": 4}),
            ]
        )
        got = {
            channel: [(await asyncio.wait_for(task, 5))["n"] for task in tasks] for channel, tasks in receivers.items()
        }
        assert got == {first: [1], second: [1], third: [2]}
    finally:
        for group, channel in (("bulk-a", first), ("bulk-a", second), ("bulk-b", third)):
            await layer.group_discard(group, channel)


def test_a_customer_conversation_starts_with_a_contact_of_its_own_tenant_only(two_tenants):
    from crm.models import Contact
    from tests.factories import ContactFactory

    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram")
    ours = ContactFactory(tenant=world.tenant, language="en")
    theirs = ContactFactory(tenant=two_tenants.b.tenant)

    conversation = services.conversation_start_customer(world.tenant, inbox, contact=ours, language="en")

    conversation.refresh_from_db()
    assert (conversation.contact_id, conversation.language, conversation.kind) == (ours.pk, "en", "customer")
    with pytest.raises(Contact.DoesNotExist):
        services.conversation_start_customer(world.tenant, inbox, contact=theirs)
    assert Conversation.objects.for_tenant(world.tenant).count() == 1
