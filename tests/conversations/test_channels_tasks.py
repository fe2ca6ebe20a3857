"""The channels' beat job: what a lost task left behind (an outbox row, a webhook event) is
picked up again, per tenant, and nothing happens twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conversations import services, tasks
from conversations.models import Message, OutboxMessage, WebhookEvent
from morvo.celery import app as celery_app
from tests.conversations.channel_helpers import (
    canned_reply,
    dumps,
    make_conversation,
    make_inbox,
    meta_headers,
    whatsapp_text,
)


@pytest.fixture(autouse=True)
def quiet(monkeypatch, quiet_realtime) -> None:
    monkeypatch.setattr("agents_app.pipeline.handle_turn", canned_reply)


def test_the_beat_fans_out_only_to_tenants_with_work(two_tenants, providers, monkeypatch):
    world = two_tenants.a
    conversation = make_conversation(
        world.tenant,
        make_inbox(world.tenant, "whatsapp", providers.url),
        "966500000001",
        customer_last_message_at=timezone.now(),
    )
    services.message_send_outbound(world.tenant, conversation, "hello")  # no commit hooks: its task is lost
    OutboxMessage.objects.for_tenant(world.tenant).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    scheduled: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(
        tasks.channels_flush_tenant_task, "apply_async", lambda args, **options: scheduled.append((args, options))
    )

    assert tasks.channels_flush_task() == 1

    assert scheduled == [((world.tenant.pk,), {"expires": 30})]


def test_a_lost_webhook_task_is_processed_by_the_flush_once(two_tenants, providers, eager):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp", providers.url)
    body = dumps(whatsapp_text("wamid.LOST", "966500000001", "hello"))
    assert (
        Client()
        .post(f"/webhooks/whatsapp/{inbox.secret}/", body, content_type="application/json", **meta_headers(body))
        .status_code
        == 200
    )
    # The test transaction never commits, so the processing task was never sent: as if lost.
    event = WebhookEvent.objects.for_tenant(world.tenant).get()
    assert event.status == "pending"
    WebhookEvent.objects.for_tenant(world.tenant).update(received_at=timezone.now() - timedelta(minutes=2))

    assert services.webhook_events_retry(two_tenants.b.tenant) == 0
    assert services.webhook_events_retry(world.tenant) == 1
    assert services.webhook_events_retry(world.tenant) == 0

    event.refresh_from_db()
    assert event.status == "done"
    assert Message.objects.for_tenant(world.tenant).filter(role="user").count() == 1
    assert services.webhook_event_process(world.tenant, event.pk) == "done"
    assert Message.objects.for_tenant(world.tenant).filter(role="user").count() == 1


def test_a_stale_claim_is_released_and_sent(two_tenants, providers, eager):
    world = two_tenants.a
    conversation = make_conversation(
        world.tenant,
        make_inbox(world.tenant, "whatsapp", providers.url),
        "966500000001",
        customer_last_message_at=timezone.now(),
    )
    services.message_send_outbound(world.tenant, conversation, "hello")
    long_ago = timezone.now() - timedelta(minutes=10)
    OutboxMessage.objects.for_tenant(world.tenant).update(
        status="sending", claimed_at=long_ago, next_attempt_at=long_ago
    )

    assert services.outbox_flush(world.tenant) == 1

    assert OutboxMessage.objects.for_tenant(world.tenant).get().status == "sent"
    assert len(providers.requests) == 1


def test_a_webhook_event_that_keeps_failing_is_marked_failed(two_tenants, monkeypatch):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    event = WebhookEvent.objects.for_tenant(world.tenant).create(
        tenant=world.tenant,
        inbox=inbox,
        dedup_key="message:x",
        kind="message",
        payload={"thread": "966500000001", "message_id": "x", "text": "hi", "contact": {"external_id": "966500000001"}},
    )

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "inbound_message_receive", broken)
    for _ in range(services.WEBHOOK_EVENT_MAX_ATTEMPTS):
        with pytest.raises(RuntimeError):
            services.webhook_event_process(world.tenant, event.pk)

    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("failed", 5, "RuntimeError: database hiccup")
    assert Message.objects.for_tenant(world.tenant).count() == 0


def test_the_web_process_queues_processing_from_a_background_thread(monkeypatch):
    import threading

    from conversations.channels import dispatch

    published: list[tuple[int, list[int]]] = []
    done = threading.Event()

    def publish_batch(tenant_id: int, event_ids: list[int]) -> None:
        published.append((tenant_id, list(event_ids)))
        if sum(len(ids) for _, ids in published) == 3:
            done.set()

    monkeypatch.setattr(dispatch, "_publish_batch", publish_batch)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        dispatch.webhook_events_dispatch(7, [1, 2, 3])
        assert done.wait(5)
    finally:
        celery_app.conf.task_always_eager = previous

    # In order, all for tenant 7 (usually one batch: the events of one request arrive together).
    assert [event_id for _, ids in published for event_id in ids] == [1, 2, 3]
    assert {tenant_id for tenant_id, _ in published} == {7}
    assert dispatch._thread is not None and dispatch._thread.is_alive()
