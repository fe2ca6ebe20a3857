"""The back office of the channels: inbox config with secrets masked, the outbox with its
dead letters and the retry action, the webhook events."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conversations import services
from conversations.models import Inbox, OutboxMessage, WebhookEvent
from morvo.celery import app as celery_app
from morvo.models import Membership
from tests import fake_providers as fp
from tests.conversations.channel_helpers import make_conversation, make_inbox
from tests.factories import UserFactory

INBOXES = "/admin/conversations/inbox/"
OUTBOX = "/admin/conversations/outboxmessage/"
EVENTS = "/admin/conversations/webhookevent/"


@pytest.fixture(autouse=True)
def english(settings) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def tasks_run_at_once(monkeypatch) -> Any:
    monkeypatch.setattr("conversations.realtime.push_message", lambda message: None)
    monkeypatch.setattr("conversations.realtime.push_inbox", lambda conversation: None)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def client_for(tenant: Any, role: str) -> Client:
    user = UserFactory()
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = Client()
    client.force_login(user)
    return client


def dead_letter(world: Any, providers: Any, capture: Any) -> OutboxMessage:
    inbox = make_inbox(world.tenant, "telegram", providers.url, bot_token="999:revoked")
    conversation = make_conversation(world.tenant, inbox, "555001")
    with capture(execute=True):
        services.message_send_outbound(world.tenant, conversation, "hello")
    row = OutboxMessage.objects.for_tenant(world.tenant).get()
    assert row.status == "dead"
    return row


def test_inbox_config_is_shown_with_secrets_masked(two_tenants):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")

    response = world.web.get(f"{INBOXES}{inbox.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert fp.ACCESS_TOKEN not in html
    assert "meta-app-secret" not in html
    assert "••••oken" in html
    assert "106540352242922" in html
    assert f"/webhooks/whatsapp/{inbox.secret}/" in html


def test_saving_masked_secrets_keeps_them_and_new_values_replace_them(two_tenants):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    shown = world.web.get(f"{INBOXES}{inbox.pk}/change/").context["adminform"].form.initial["config"]
    edited = {**shown, "verify_token": "a-new-verify-token"}
    import json

    response = world.web.post(
        f"{INBOXES}{inbox.pk}/change/",
        {"name": inbox.name, "channel_type": "whatsapp", "is_active": "on", "config": json.dumps(edited)},
    )

    assert response.status_code == 302
    inbox.refresh_from_db()
    assert inbox.config["access_token"] == fp.ACCESS_TOKEN
    assert inbox.config["app_secret"] == "meta-app-secret"
    assert inbox.config["verify_token"] == "a-new-verify-token"


def test_an_inbox_config_missing_keys_is_refused(two_tenants):
    world = two_tenants.a

    response = world.web.post(
        f"{INBOXES}add/",
        {"name": "Bot", "channel_type": "telegram", "is_active": "on", "config": '{"bot_token": "1:x"}'},
    )

    assert response.status_code == 200
    assert "secret_token: This field is required." in response.content.decode()
    assert Inbox.objects.for_tenant(world.tenant).count() == 0


def test_dead_letters_are_listed_and_the_retry_action_sends_them(
    two_tenants, providers, django_capture_on_commit_callbacks
):
    world = two_tenants.a
    row = dead_letter(world, providers, django_capture_on_commit_callbacks)

    listed = world.web.get(f"{OUTBOX}?status=dead")
    assert listed.status_code == 200
    assert "HTTP 401" in listed.content.decode()
    Inbox.objects.for_tenant(world.tenant).filter(pk=row.inbox_id).update(
        config={**row.inbox.config, "bot_token": fp.BOT_TOKEN}
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = world.web.post(OUTBOX, {"action": "retry_dead_letters", "_selected_action": [row.pk]})

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    assert [request.path for request in providers.requests] == [
        "/bot999:revoked/sendMessage",
        f"/bot{fp.BOT_TOKEN}/sendMessage",
    ]


def test_a_viewer_cannot_retry(two_tenants, providers, django_capture_on_commit_callbacks):
    world = two_tenants.a
    row = dead_letter(world, providers, django_capture_on_commit_callbacks)
    viewer = client_for(world.tenant, Membership.Role.VIEWER)

    response = viewer.post(OUTBOX, {"action": "retry_dead_letters", "_selected_action": [row.pk]})

    assert response.status_code == 200  # the action is not offered to a viewer: the list again
    row.refresh_from_db()
    assert row.status == "dead"
    assert len(providers.requests) == 1


def test_another_tenants_outbox_row_inbox_and_event_are_404(two_tenants, providers, django_capture_on_commit_callbacks):
    row = dead_letter(two_tenants.a, providers, django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.for_tenant(two_tenants.a.tenant).create(
        tenant=two_tenants.a.tenant, inbox=row.inbox, dedup_key="k", kind="message", payload={}
    )
    other = two_tenants.b.web

    assert other.get(f"{OUTBOX}{row.pk}/change/").status_code == 404
    assert other.get(f"{INBOXES}{row.inbox_id}/change/").status_code == 404
    assert other.get(f"{EVENTS}{event.pk}/change/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        other.post(OUTBOX, {"action": "retry_dead_letters", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.status == "dead"
    assert two_tenants.a.web.get(f"{EVENTS}{event.pk}/change/").status_code == 200
