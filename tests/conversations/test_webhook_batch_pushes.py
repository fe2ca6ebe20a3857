"""A batch of webhook events pushes to the sockets together: the messages' frames in order,
one inbox frame per conversation read after the batch's writes, and a turn queued only
after its question was pushed. Each event still commits on its own."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conversations import realtime, services, tasks
from conversations.models import Conversation, Message, WebhookEvent
from tests.conversations.channel_helpers import dumps, make_conversation, make_inbox, meta_headers, whatsapp_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log(monkeypatch) -> list[Any]:
    """What left the worker, in order: each channel-layer send (a list of frames) and each
    turn queued."""
    seen: list[Any] = []
    monkeypatch.setattr(realtime, "group_send_many", lambda sends: seen.append(list(sends)))
    monkeypatch.setattr(tasks.conversation_turn_task, "delay", lambda tenant_id, message_id: seen.append(message_id))
    return seen


def post_events(world: Any, inbox: Any, items: list[tuple[str, str, str]]) -> list[int]:
    """Signed WhatsApp webhooks for ``(message id, sender, text)``; their stored event ids.
    Their processing is not queued (the test runs the batch task itself)."""
    for message_id, sender, text in items:
        body = dumps(whatsapp_text(message_id, sender, text))
        response = Client().post(
            f"/webhooks/whatsapp/{inbox.secret}/", body, content_type="application/json", **meta_headers(body)
        )
        assert response.status_code == 200
    return list(WebhookEvent.objects.for_tenant(world.tenant).order_by("id").values_list("pk", flat=True))


@pytest.fixture
def no_dispatch(monkeypatch) -> None:
    monkeypatch.setattr("conversations.channels.dispatch.webhook_events_dispatch", lambda tenant_id, ids: None)


def frames(sends: list[tuple[str, dict[str, Any]]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(group, event) for group, event in sends if event["type"] == kind]


def test_a_batch_pushes_once_in_order_and_queues_turns_after(two_tenants, log, no_dispatch, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    # Noura's conversation is with a person (no turn); Omar's and Huda's are the AI's.
    make_conversation(world.tenant, inbox, "966500000001", handled_by=Conversation.HandledBy.HUMAN)
    ids = post_events(
        world,
        inbox,
        [
            ("wamid.B1", "966500000001", "hello"),
            ("wamid.B2", "966500000002", "مرحبا"),
            ("wamid.B3", "966500000001", "are you there?"),
            ("wamid.B4", "966500000003", "price of the red dress?"),
            ("wamid.B5", "966500000001", "anyone?"),
        ],
    )
    monkeypatch.setattr(tasks, "WEBHOOK_PUSH_SECONDS", 60.0)

    assert tasks.webhook_events_process_task(world.tenant.pk, ids) == {"done": 5}

    sends = [entry for entry in log if isinstance(entry, list)]
    assert len(sends) == 1, "one channel-layer send for the whole batch"
    messages = Message.objects.for_tenant(world.tenant).order_by("id")
    by_external = {message.external_id: message for message in messages}
    pushed = [event["message"]["id"] for _, event in frames(sends[0], "chat.message")]
    assert pushed == [by_external[f"wamid.B{n}"].pk for n in range(1, 6)]
    for group, event in frames(sends[0], "chat.message"):
        message = Message.objects.for_tenant(world.tenant).get(pk=event["message"]["id"])
        assert group == realtime.conversation_group(world.tenant.pk, message.conversation_id)
    inbox_frames = frames(sends[0], "inbox.conversation")
    assert sorted(event["conversation"]["id"] for _, event in inbox_frames) == sorted(
        Conversation.objects.for_tenant(world.tenant).values_list("pk", flat=True)
    )
    noura = Conversation.objects.for_tenant(world.tenant).get(external_id="966500000001")
    (noura_frame,) = [event for _, event in inbox_frames if event["conversation"]["id"] == noura.pk]
    assert noura_frame["conversation"]["unread_for_agents"] == 3, "read after the batch's last write"
    assert all(group == realtime.inbox_group(world.tenant.pk) for group, _ in inbox_frames)
    # The two AI conversations' questions start turns, after the send that pushed them.
    turns = [entry for entry in log if not isinstance(entry, list)]
    assert turns == [by_external["wamid.B2"].pk, by_external["wamid.B4"].pk]
    assert log.index(sends[0]) < log.index(turns[0])
    assert all(message.external_id for message in messages)
    assert noura.customer_last_message_at == by_external["wamid.B5"].created_at


def test_a_long_batch_pushes_as_it_goes(two_tenants, log, no_dispatch, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    make_conversation(world.tenant, inbox, "966500000001", handled_by=Conversation.HandledBy.HUMAN)
    ids = post_events(world, inbox, [(f"wamid.L{n}", "966500000001", f"line {n}") for n in range(3)])
    monkeypatch.setattr(tasks, "WEBHOOK_PUSH_SECONDS", 0.0)

    tasks.webhook_events_process_task(world.tenant.pk, ids)

    sends = [entry for entry in log if isinstance(entry, list)]
    assert [len(frames(send, "chat.message")) for send in sends[:3]] == [1, 1, 1]
    assert [event["message"]["content"] for send in sends for _, event in frames(send, "chat.message")] == [
        "line 0",
        "line 1",
        "line 2",
    ]


def test_a_failed_push_loses_no_event_and_still_queues_the_turns(two_tenants, no_dispatch, monkeypatch, caplog):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    ids = post_events(world, inbox, [("wamid.F1", "966500000001", "hello"), ("wamid.F2", "966500000002", "hi")])
    turns: list[int] = []

    def refused(sends: Any) -> None:
        raise ConnectionError("channel layer down")

    monkeypatch.setattr(realtime, "group_send_many", refused)
    monkeypatch.setattr(tasks.conversation_turn_task, "delay", lambda tenant_id, message_id: turns.append(message_id))

    assert tasks.webhook_events_process_task(world.tenant.pk, ids) == {"done": 2}

    assert WebhookEvent.objects.for_tenant(world.tenant).filter(status=WebhookEvent.Status.DONE).count() == 2
    assert sorted(turns) == sorted(Message.objects.for_tenant(world.tenant).values_list("pk", flat=True))
    assert "could not push" in caplog.text


def test_outside_a_batch_a_push_goes_out_at_once_and_blocks_nest(two_tenants, log):
    world = two_tenants.a
    conversation = services.conversation_start_visitor(world.tenant, "visitor-1")
    message, _ = services.message_post(world.tenant, conversation, content="hello")
    log.clear()

    realtime.push_messages([message])
    assert len(log) == 1

    with realtime.gathered() as outer:
        with realtime.gathered() as inner:
            assert inner is outer
            realtime.push_messages([message])
            realtime.push_inbox_many([conversation])
            realtime.push_inbox_many([conversation])
            realtime.after_pushes(lambda: log.append("after"))
        assert len(log) == 1, "held until the outer block ends"
    assert len(log) == 3
    assert [event["type"] for _, event in log[1]] == ["chat.message", "inbox.conversation"]
    assert log[2] == "after"


def test_an_event_of_a_known_sender_is_a_dozen_statements(
    two_tenants, log, no_dispatch, monkeypatch, django_assert_max_num_queries
):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    senders = [f"96650000001{n}" for n in range(5)]
    for sender in senders:
        make_conversation(world.tenant, inbox, sender, handled_by=Conversation.HandledBy.HUMAN)
    first = post_events(world, inbox, [(f"wamid.K{n}", sender, "hi") for n, sender in enumerate(senders)])
    tasks.webhook_events_process_task(world.tenant.pk, first)  # the contacts now exist
    ids = post_events(world, inbox, [(f"wamid.K{n + 5}", senders[n % 5], f"again {n}") for n in range(10)])[5:]
    monkeypatch.setattr(tasks, "WEBHOOK_PUSH_SECONDS", 60.0)

    # Per event: begin, lock, identity, conversation, two duplicate checks, a savepoint around
    # the insert and the conversation's counts, the event, commit (12); per batch: the tenant
    # and the inbox list (the send is the fixture's).
    with django_assert_max_num_queries(10 * 12 + 3):
        assert tasks.webhook_events_process_task(world.tenant.pk, ids) == {"done": 10}

    assert Message.objects.for_tenant(world.tenant).count() == 15
