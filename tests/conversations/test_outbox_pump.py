"""The outbox's pump: an inbox's due rows go out in batches within its rate, conversations at
once and each conversation in order, one pump per inbox, to fake providers on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import transaction

from conversations import services
from conversations.models import OutboxMessage
from conversations.tasks import outbox_pump_task
from morvo.celery import app as celery_app
from tests.conversations.channel_helpers import make_conversation, make_inbox


@pytest.fixture(autouse=True)
def no_socket_pushes(monkeypatch) -> None:
    monkeypatch.setattr("conversations.realtime.push_message", lambda message: None)
    monkeypatch.setattr("conversations.realtime.push_inbox", lambda conversation: None)


@pytest.fixture
def started(monkeypatch) -> list[tuple[int, int, float]]:
    """The pumps queued, recorded instead of run."""
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(
        services,
        "outbox_pump_start",
        lambda tenant_id, inbox_id, countdown=0.0: calls.append((tenant_id, inbox_id, countdown)),
    )
    return calls


def queue(world: Any, conversation: Any, *texts: str) -> list[OutboxMessage]:
    """Queue ``texts`` (no pump runs: the on-commit callbacks of the test's transaction never
    fire) and return their outbox rows."""
    for text in texts:
        services.message_send_outbound(world.tenant, conversation, text)
    return list(OutboxMessage.objects.for_tenant(world.tenant).filter(conversation=conversation).order_by("id"))


def statuses(tenant: Any) -> list[str]:
    return list(OutboxMessage.objects.for_tenant(tenant).order_by("id").values_list("status", flat=True))


def test_a_transaction_queueing_many_rows_starts_one_pump_per_inbox(
    two_tenants, providers, eager, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    telegram = make_inbox(world.tenant, "telegram", providers.url)
    sms = make_inbox(world.tenant, "sms", providers.url, rate_per_second=50)
    chats = [make_conversation(world.tenant, telegram, f"5550{n}") for n in range(10)]
    phones = [make_conversation(world.tenant, sms, f"+96650000010{n}") for n in range(5)]

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for conversation in [*chats, *phones]:
            services.message_send_outbound(world.tenant, conversation, f"back in stock {conversation.external_id}")

    pumps = [callback for callback in callbacks if isinstance(callback, services._PumpAfterCommit)]
    assert sorted(pump.key for pump in pumps) == sorted([(world.tenant.pk, telegram.pk), (world.tenant.pk, sms.pk)])
    for callback in callbacks:
        callback()
    assert statuses(world.tenant) == ["sent"] * 15
    assert len(providers.requests) == 15


def test_a_rolled_back_savepoint_does_not_swallow_the_next_rows_pump(two_tenants, providers):
    world = two_tenants.a
    conversation = make_conversation(world.tenant, make_inbox(world.tenant, "telegram", providers.url), "555100")
    connection = transaction.get_connection()
    with transaction.atomic():
        before = len(connection.run_on_commit)
        try:
            with transaction.atomic():
                services.message_send_outbound(world.tenant, conversation, "first")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        services.message_send_outbound(world.tenant, conversation, "second")
        pumps = [
            entry[1] for entry in connection.run_on_commit[before:] if isinstance(entry[1], services._PumpAfterCommit)
        ]
    assert len(pumps) == 1


def test_a_burst_over_the_rate_goes_out_a_second_at_a_time_in_order(two_tenants, providers, started, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "sms", providers.url, rate_per_second=2)
    conversations = [make_conversation(world.tenant, inbox, f"+9665000002{n:02d}") for n in range(7)]
    for index, conversation in enumerate(conversations):
        queue(world, conversation, f"message {index}")
    clock = [1_900_000_000.25]
    monkeypatch.setattr("time.time", lambda: clock[0])

    rounds = []
    for _ in range(4):
        started.clear()
        counts = services.outbox_pump(world.tenant, inbox.pk)
        rounds.append((counts["sent"], started[:]))
        clock[0] += 1

    # Two a second; after each second's two the pump comes back when the next second starts.
    assert [sent for sent, _ in rounds] == [2, 2, 2, 1]
    assert [calls for _, calls in rounds[:3]] == [[(world.tenant.pk, inbox.pk, 0.75)]] * 3
    assert rounds[3][1] == []  # nothing left, nothing queued
    # Oldest first (the two of one second go out at once, in either order).
    bodies = [request.form["Body"] for request in providers.requests]
    assert [sorted(bodies[n : n + 2]) for n in range(0, 7, 2)] == [
        [f"message {m}" for m in range(n, min(n + 2, 7))] for n in range(0, 7, 2)
    ]
    assert statuses(world.tenant) == ["sent"] * 7
    # Another business's inbox has an allowance of its own.
    theirs = two_tenants.b
    clock[0] -= 1
    other = make_inbox(theirs.tenant, "sms", providers.url, rate_per_second=2)
    queue(theirs, make_conversation(theirs.tenant, other, "+966500000300"), "theirs")
    assert services.outbox_pump(theirs.tenant, other.pk)["sent"] == 1


def test_rows_released_over_the_rate_are_due_when_the_next_second_starts(two_tenants, providers, started, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "sms", providers.url, rate_per_second=3)
    rows = [queue(world, make_conversation(world.tenant, inbox, f"+9665000004{n:02d}"), f"m{n}")[0] for n in range(3)]
    monkeypatch.setattr("time.time", lambda: 1_900_000_000.6)
    # Another process already sent two this second: one of the three fits.
    from morvo import services as core_services

    core_services.throttle_hit(f"outbox:{world.tenant.pk}:{inbox.pk}", 1_900_000_000, 1, amount=2)

    counts = services.outbox_pump(world.tenant, inbox.pk)

    assert (counts["sent"], counts["throttled"]) == (1, 2)
    assert statuses(world.tenant) == ["sent", "pending", "pending"]
    later = OutboxMessage.objects.for_tenant(world.tenant).get(pk=rows[1].pk)
    assert later.claimed_at is None and later.attempts == 0
    [(_, _, countdown)] = started
    assert countdown == pytest.approx(0.4)


def test_conversations_are_sent_at_once(two_tenants, providers, started):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    for n in range(8):
        queue(world, make_conversation(world.tenant, inbox, f"5552{n}"), f"hello {n}")
    providers.latency = 0.3

    began = time.monotonic()
    counts = services.outbox_pump(world.tenant, inbox.pk)
    elapsed = time.monotonic() - began

    assert counts["sent"] == 8
    assert providers.max_in_flight >= 4
    assert elapsed < 8 * 0.3


def test_a_conversations_messages_go_out_in_order_and_wait_behind_a_retry(two_tenants, providers, started):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    conversation = make_conversation(world.tenant, inbox, "555300")
    first, second, third = queue(world, conversation, "one", "two", "three")
    providers.fail_next(1, 503)

    counts = services.outbox_pump(world.tenant, inbox.pk)

    assert (counts["sent"], counts["retry"], counts["held"]) == (0, 1, 2)
    rows = {row.pk: row for row in OutboxMessage.objects.for_tenant(world.tenant)}
    assert [(rows[row.pk].status, rows[row.pk].attempts) for row in (first, second, third)] == [
        ("pending", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert rows[second.pk].next_attempt_at == rows[first.pk].next_attempt_at == rows[third.pk].next_attempt_at
    # A fourth message written meanwhile waits too, though it is due.
    queue(world, conversation, "four")
    assert services.outbox_pump(world.tenant, inbox.pk)["sent"] == 0

    OutboxMessage.objects.for_tenant(world.tenant).update(next_attempt_at=services.timezone.now())
    assert services.outbox_pump(world.tenant, inbox.pk)["sent"] == 4
    assert [request.json["text"] for request in providers.requests] == ["one", "one", "two", "three", "four"]


def test_a_refused_message_does_not_hold_back_the_rest_of_its_conversation(two_tenants, providers, started):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    queue(world, make_conversation(world.tenant, inbox, "555400"), "one", "two")
    providers.fail_next(1, 400)

    counts = services.outbox_pump(world.tenant, inbox.pk)

    assert (counts["dead"], counts["sent"]) == (1, 1)
    assert statuses(world.tenant) == ["dead", "sent"]


def test_an_inbox_with_incomplete_configuration_makes_dead_letters_with_the_reason(two_tenants, providers, started):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    inbox.config.pop("phone_number_id")
    inbox.save(update_fields=["config"])
    conversation = make_conversation(
        world.tenant, inbox, "966500000500", customer_last_message_at=services.timezone.now()
    )
    [row] = queue(world, conversation, "hello")

    assert services.outbox_pump(world.tenant, inbox.pk)["dead"] == 1

    row.refresh_from_db()
    assert row.status == "dead"
    assert "configuration is incomplete" in row.last_error and "phone_number_id" in row.last_error
    assert providers.requests == []


def test_a_fault_in_one_send_leaves_the_others_sent(two_tenants, providers, started, monkeypatch):
    from conversations.channels.telegram import TelegramChannel

    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    for n in range(4):
        queue(world, make_conversation(world.tenant, inbox, f"5555{n}"), f"hello {n}")
    real_send = TelegramChannel.send

    def send(self: Any, request: Any) -> str:
        if request.json["text"] == "hello 2":
            raise RuntimeError("a bug")
        return real_send(self, request)

    monkeypatch.setattr(TelegramChannel, "send", send)

    counts = services.outbox_pump(world.tenant, inbox.pk)

    assert (counts["sent"], counts["retry"]) == (3, 1)
    assert sorted(statuses(world.tenant)) == ["pending", "sent", "sent", "sent"]
    retried = OutboxMessage.objects.for_tenant(world.tenant).get(status="pending")
    assert retried.last_error == "RuntimeError: a bug"


def test_a_pump_finding_the_inbox_taken_sends_nothing(two_tenants, providers, started, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    queue(world, make_conversation(world.tenant, inbox, "555600"), "hello")
    monkeypatch.setattr(services, "_outbox_pump_lock", lambda inbox_id, take: not take)

    assert services.outbox_pump(world.tenant, inbox.pk)["busy"] == 1
    assert statuses(world.tenant) == ["pending"]
    assert providers.requests == [] and started == []


def test_the_pump_holding_the_inbox_looks_again_after_letting_go(two_tenants, providers, started, monkeypatch):
    """A row committed after the holder's last claim, whose own pump found the inbox taken,
    is picked up: the holder looks for due rows once it has let go."""
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    queue(world, make_conversation(world.tenant, inbox, "555700"), "hello")
    monkeypatch.setattr(services, "_outbox_claim", lambda tenant, inbox, limit: [])

    services.outbox_pump(world.tenant, inbox.pk)

    assert started == [(world.tenant.pk, inbox.pk, 0.0)]


def test_the_pump_of_another_tenants_inbox_sends_nothing(two_tenants, providers, eager):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "telegram", providers.url)
    queue(world, make_conversation(world.tenant, inbox, "555800"), "hello")

    assert outbox_pump_task.apply(args=(two_tenants.b.tenant.pk, inbox.pk)).get()["sent"] == 0

    assert statuses(world.tenant) == ["pending"]
    assert providers.requests == []


def test_deliveries_have_a_queue_the_worker_takes_turns_with():
    route = celery_app.amqp.router.route({}, "conversations.tasks.outbox_pump_task", (), {})
    assert route["queue"].name == "outbox"
    assert celery_app.amqp.router.route({}, "conversations.tasks.conversation_turn_task", (), {})["queue"].name == (
        "celery"
    )
    assert {"celery", "outbox"} <= set(celery_app.amqp.queues)


def test_a_pump_round_is_the_same_few_statements_for_ten_rows_or_forty(two_tenants, providers, started):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(world: Any, count: int) -> int:
        inbox = make_inbox(world.tenant, "telegram", providers.url, rate_per_second=100)
        for n in range(count):
            queue(world, make_conversation(world.tenant, inbox, f"{count}{n:03d}"), f"hello {n}")
        with CaptureQueriesContext(connection) as queries:
            assert services.outbox_pump(world.tenant, inbox.pk)["sent"] == count
        return len(queries)

    assert statements(two_tenants.a, 10) == statements(two_tenants.b, 40) <= 12


def test_a_claim_takes_no_more_rows_than_asked(two_tenants, providers):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "sms", providers.url, rate_per_second=2)
    for n in range(7):
        queue(world, make_conversation(world.tenant, inbox, f"+9665000008{n:02d}"), f"m{n}")

    claimed = services._outbox_claim(world.tenant, inbox, 2)

    assert len(claimed) == 2
    assert statuses(world.tenant) == ["sending", "sending"] + ["pending"] * 5
