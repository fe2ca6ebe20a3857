"""Channel webhooks answered straight from ASGI (``conversations.webhook_asgi``), through real
ASGI calls on ``morvo.asgi.application`` (or on ``WebhookApplication`` around a fake inner
application): status codes, bodies and headers, the body limit read in chunks, the language
of the error messages, the pass-through of every other path, and the inbox cache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.core.exceptions import DisallowedHost

from conversations import services
from conversations.models import Inbox, WebhookEvent
from conversations.webhook_asgi import WebhookApplication
from conversations.webhooks import body_limit, inbox_cache_clear
from morvo.asgi import application, django_asgi_app
from tests.conversations.channel_helpers import (
    VERIFY_TOKEN,
    dumps,
    make_conversation,
    make_inbox,
    meta_headers,
    whatsapp_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10
SENDER = "966500000001"
NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
TOO_LARGE = {"error": {"status": 413, "code": "payload_too_large", "message": "The payload is too large."}}


@pytest.fixture(autouse=True)
def english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def empty_inbox_cache() -> Any:
    # The cache is per process and the test database is flushed without signals.
    inbox_cache_clear()
    yield
    inbox_cache_clear()


@pytest.fixture(autouse=True)
def dispatched(monkeypatch: Any) -> list[tuple[int, list[int]]]:
    """The processing queued after commit, recorded instead of run (the acknowledgement, not
    the turn, is under test here)."""
    calls: list[tuple[int, list[int]]] = []
    monkeypatch.setattr(
        "conversations.channels.dispatch.webhook_events_dispatch",
        lambda tenant_id, event_ids: calls.append((tenant_id, list(event_ids))),
    )
    return calls


@pytest.fixture
def inbox(two_tenants: Any) -> Inbox:
    return make_inbox(two_tenants.a.tenant, "whatsapp")


class FakeInner:
    """An inner ASGI application that records what reached it and answers 204."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        if scope["type"] == "http":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        self.calls.append((scope, body))
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-inner", b"yes")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def fake_inner() -> Any:
    inner = FakeInner()
    wrapped = WebhookApplication(inner, threads=1)
    yield inner, wrapped
    if wrapped._executor is not None:
        wrapped._executor.shutdown(wait=True)


def http_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b"", root: str = ""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root,
        "query_string": query,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }


async def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    chunks: list[bytes] | None = None,
    query: bytes = b"",
    root: str = "",
) -> dict[str, Any]:
    """One request through ``app``: the body in one ``http.request`` message, or ``chunks``
    as several (``more_body`` on all but the last). Returns status, headers (a list of
    lowercase ``(name, value)`` strings) and body."""
    communicator = ApplicationCommunicator(app, http_scope(method, path, headers, query, root))
    parts = chunks if chunks is not None else [body]
    for index, part in enumerate(parts):
        await communicator.send_input({"type": "http.request", "body": part, "more_body": index < len(parts) - 1})
    start = await communicator.receive_output(TIMEOUT)
    assert start["type"] == "http.response.start"
    content = b""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        assert message["type"] == "http.response.body"
        content += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(TIMEOUT)
    return {
        "status": start["status"],
        "headers": [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in start["headers"]],
        "body": content,
    }


def header(response: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in response["headers"] if key == name]


def signed(body: bytes, secret: str | None = None, length: bool = True) -> list[tuple[bytes, bytes]]:
    signature = (meta_headers(body, secret) if secret else meta_headers(body))["HTTP_X_HUB_SIGNATURE_256"]
    headers = [(b"content-type", b"application/json"), (b"x-hub-signature-256", signature.encode())]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    return headers


def url_of(inbox: Inbox) -> str:
    return f"/webhooks/{inbox.channel_type}/{inbox.secret}/"


def text_body(message_id: str, text: str = "hello") -> bytes:
    return dumps(whatsapp_text(message_id, SENDER, text))


def body_of_size(message_id: str, size: int) -> bytes:
    """A WhatsApp text webhook exactly ``size`` bytes long."""
    padding = size - len(text_body(message_id, ""))
    body = text_body(message_id, "x" * padding)
    assert len(body) == size
    return body


def split(body: bytes, parts: int) -> list[bytes]:
    step = -(-len(body) // parts)
    return [body[index : index + step] for index in range(0, len(body), step)]


@database_sync_to_async
def stored_events() -> list[tuple[int, int, str, str]]:
    return list(
        WebhookEvent.objects.all_tenants().order_by("id").values_list("tenant_id", "inbox_id", "dedup_key", "status")
    )


@database_sync_to_async
def event_ids() -> list[int]:
    return list(WebhookEvent.objects.all_tenants().order_by("id").values_list("id", flat=True))


# --- accepted ------------------------------------------------------------------------------


async def test_a_signed_whatsapp_webhook_is_acknowledged_and_stored_once(two_tenants, inbox, dispatched):
    body = text_body("wamid.ASGI1", "هل العطر متوفر؟")

    first = await call(application, "POST", url_of(inbox), body, signed(body))

    assert first["status"] == 200
    assert json.loads(first["body"]) == {"ok": True, "accepted": 1}
    assert header(first, "content-type") == ["application/json"]
    events = await stored_events()
    assert len(events) == 1
    tenant_id, inbox_id, _, status = events[0]
    assert (tenant_id, inbox_id, status) == (two_tenants.a.tenant.pk, inbox.pk, "pending")
    assert dispatched == [(two_tenants.a.tenant.pk, await event_ids())]

    second = await call(application, "POST", url_of(inbox), body, signed(body))

    assert second["status"] == 200
    assert json.loads(second["body"]) == {"ok": True, "accepted": 1}
    assert await stored_events() == events
    assert len(dispatched) == 1


async def test_the_answer_carries_its_length_and_nosniff(inbox):
    body = text_body("wamid.HEAD1")

    accepted = await call(application, "POST", url_of(inbox), body, signed(body))
    missing = await call(application, "POST", "/webhooks/whatsapp/not-a-token/", body, signed(body))

    for response in (accepted, missing):
        assert header(response, "content-length") == [str(len(response["body"]))]
        assert header(response, "x-content-type-options") == ["nosniff"]
        # Exactly these: Django's middleware (which this path skips) would add its own headers.
        assert sorted(name for name, _ in response["headers"]) == [
            "content-length",
            "content-type",
            "x-content-type-options",
        ]
    assert int(header(accepted, "content-length")[0]) == len(b'{"ok": true, "accepted": 1}')


async def test_a_body_sent_in_chunks_is_joined_before_the_signature_is_checked(inbox):
    body = text_body("wamid.CHUNKS", "مرحبا " * 200)

    response = await call(application, "POST", url_of(inbox), headers=signed(body, length=False), chunks=split(body, 5))

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"ok": True, "accepted": 1}
    assert len(await stored_events()) == 1


async def test_a_root_path_is_taken_off_before_the_webhook_path_is_matched(inbox):
    body = text_body("wamid.ROOT")

    response = await call(application, "POST", "/morvo" + url_of(inbox), body, signed(body), root="/morvo")

    assert response["status"] == 200
    assert len(await stored_events()) == 1


# --- refused -------------------------------------------------------------------------------


async def test_a_bad_signature_is_403_and_stores_nothing(inbox, dispatched):
    body = text_body("wamid.BAD")

    wrong_secret = await call(application, "POST", url_of(inbox), body, signed(body, "another-secret"))
    zeros = [(b"content-type", b"application/json"), (b"x-hub-signature-256", b"sha256=" + b"0" * 64)]
    wrong_digest = await call(application, "POST", url_of(inbox), body, zeros)

    for response in (wrong_secret, wrong_digest):
        assert response["status"] == 403
        assert json.loads(response["body"]) == {
            "error": {"status": 403, "code": "bad_signature", "message": "The signature does not match."}
        }
    assert await stored_events() == []
    assert dispatched == []


async def test_a_missing_signature_is_401_and_stores_nothing(inbox, dispatched):
    body = text_body("wamid.UNSIGNED")

    response = await call(application, "POST", url_of(inbox), body, [(b"content-type", b"application/json")])

    assert response["status"] == 401
    assert json.loads(response["body"]) == {
        "error": {"status": 401, "code": "missing_signature", "message": "The request is not signed."}
    }
    assert await stored_events() == []
    assert dispatched == []


async def test_a_signed_but_malformed_payload_is_400_and_stores_nothing(inbox):
    body = dumps({"object": "page"})

    response = await call(application, "POST", url_of(inbox), body, signed(body))

    assert response["status"] == 400
    assert json.loads(response["body"]) == {
        "error": {"status": 400, "code": "malformed_payload", "message": "The payload is not what this channel sends."}
    }
    assert await stored_events() == []


async def test_an_unknown_token_is_a_404_json_error(inbox):
    body = text_body("wamid.UNKNOWN")

    response = await call(application, "POST", "/webhooks/whatsapp/not-a-token/", body, signed(body))

    assert response["status"] == 404
    assert header(response, "content-type") == ["application/json"]
    assert json.loads(response["body"]) == NOT_FOUND
    assert await stored_events() == []


async def test_a_channel_without_an_adapter_or_of_another_type_is_404(two_tenants, inbox):
    web = await database_sync_to_async(Inbox.objects.for_tenant(two_tenants.a.tenant).create)(
        tenant=two_tenants.a.tenant, name="web chat", channel_type="web"
    )
    body = text_body("wamid.CHANNEL")

    no_such_channel = await call(application, "POST", f"/webhooks/fax/{inbox.secret}/", body, signed(body))
    web_inbox = await call(application, "POST", url_of(web), body, signed(body))
    wrong_channel = await call(application, "POST", f"/webhooks/telegram/{inbox.secret}/", body, signed(body))

    for response in (no_such_channel, web_inbox, wrong_channel):
        assert response["status"] == 404
        assert json.loads(response["body"]) == NOT_FOUND
    assert await stored_events() == []


async def test_another_tenants_inbox_token_does_not_cross_over(two_tenants):
    theirs = await database_sync_to_async(make_inbox)(two_tenants.b.tenant, "whatsapp")
    body = text_body("wamid.TENANT")

    response = await call(application, "POST", url_of(theirs), body, signed(body))

    assert response["status"] == 200
    assert [event[:2] for event in await stored_events()] == [(two_tenants.b.tenant.pk, theirs.pk)]


# --- the body limit --------------------------------------------------------------------------


async def test_a_body_over_the_limit_in_chunks_is_413_and_stores_nothing(inbox, dispatched):
    limit = body_limit("whatsapp")
    body = body_of_size("wamid.BIG", limit + 1)

    response = await call(application, "POST", url_of(inbox), headers=signed(body, length=False), chunks=split(body, 4))

    assert response["status"] == 413
    assert json.loads(response["body"]) == TOO_LARGE
    assert await stored_events() == []
    assert dispatched == []


async def test_a_body_of_exactly_the_limit_in_chunks_is_accepted(inbox):
    limit = body_limit("whatsapp")
    body = body_of_size("wamid.EDGE", limit)

    response = await call(application, "POST", url_of(inbox), headers=signed(body, length=False), chunks=split(body, 4))

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"ok": True, "accepted": 1}
    assert len(await stored_events()) == 1


async def test_a_declared_content_length_over_the_limit_is_413_and_stores_nothing(inbox):
    body = text_body("wamid.DECLARED")
    headers = [*signed(body, length=False), (b"content-length", str(body_limit("whatsapp") + 1).encode())]

    response = await call(application, "POST", url_of(inbox), body, headers)

    assert response["status"] == 413
    assert json.loads(response["body"]) == TOO_LARGE
    assert await stored_events() == []


async def test_an_oversized_body_to_an_unknown_token_is_still_404(inbox):
    body = body_of_size("wamid.BIG404", body_limit("whatsapp") + 1)

    response = await call(application, "POST", "/webhooks/whatsapp/not-a-token/", chunks=split(body, 3))

    assert response["status"] == 404
    assert json.loads(response["body"]) == NOT_FOUND


# --- methods and the verification handshake -------------------------------------------------


async def test_put_is_405_and_stores_nothing(inbox):
    body = text_body("wamid.PUT")

    response = await call(application, "PUT", url_of(inbox), body, signed(body))

    assert response["status"] == 405
    assert json.loads(response["body"]) == {
        "error": {"status": 405, "code": "method_not_allowed", "message": "Method not allowed."}
    }
    assert await stored_events() == []


async def test_whatsapp_get_handshake_echoes_the_challenge_with_the_right_verify_token(inbox):
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444".encode()

    accepted = await call(application, "GET", url_of(inbox), query=query)
    refused = await call(application, "GET", url_of(inbox), query=query.replace(VERIFY_TOKEN.encode(), b"guess"))

    assert (accepted["status"], accepted["body"]) == (200, b"1158201444")
    assert header(accepted, "content-type") == ["text/plain"]
    assert header(accepted, "content-length") == ["10"]
    assert refused["status"] == 403
    assert refused["body"] != b"1158201444"
    assert await stored_events() == []


async def test_a_get_handshake_to_an_unknown_token_is_404():
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42".encode()

    response = await call(application, "GET", "/webhooks/whatsapp/not-a-token/", query=query)

    assert response["status"] == 404
    assert json.loads(response["body"]) == NOT_FOUND


# --- the language of errors ------------------------------------------------------------------


async def test_errors_follow_accept_language_arabic(inbox):
    arabic = [(b"accept-language", b"ar")]
    body = text_body("wamid.AR")

    not_found = await call(application, "POST", "/webhooks/whatsapp/not-a-token/", body, arabic)
    unsigned = await call(application, "POST", url_of(inbox), body, arabic)

    assert not_found["status"] == 404
    assert json.loads(not_found["body"]) == {"error": {"status": 404, "code": "not_found", "message": "غير موجود."}}
    assert unsigned["status"] == 401
    assert json.loads(unsigned["body"])["error"]["message"] == "الطلب غير موقَّع."


async def test_errors_follow_accept_language_english_when_the_default_is_arabic(settings, inbox):
    settings.LANGUAGE_CODE = "ar"

    default = await call(application, "POST", "/webhooks/whatsapp/not-a-token/")
    english = await call(application, "POST", "/webhooks/whatsapp/not-a-token/", headers=[(b"accept-language", b"en")])

    assert json.loads(default["body"])["error"]["message"] == "غير موجود."
    assert json.loads(english["body"]) == NOT_FOUND


# --- failures inside the answer ---------------------------------------------------------------


async def test_an_unexpected_error_is_a_500_json_error(monkeypatch, inbox):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("conversations.webhooks.webhook_handle", broken)
    body = text_body("wamid.BOOM")

    response = await call(application, "POST", url_of(inbox), body, signed(body))

    assert response["status"] == 500
    assert json.loads(response["body"]) == {
        "error": {
            "status": 500,
            "code": "server_error",
            "message": "Something went wrong on our side; please retry.",
        }
    }
    assert header(response, "x-content-type-options") == ["nosniff"]


async def test_a_suspicious_request_is_a_400(monkeypatch, inbox):
    def suspicious(*args: Any, **kwargs: Any) -> Any:
        raise DisallowedHost("evil.example")

    monkeypatch.setattr("conversations.webhooks.webhook_handle", suspicious)

    response = await call(application, "POST", url_of(inbox), b"{}")

    assert response["status"] == 400
    assert json.loads(response["body"])["error"]["code"] == "malformed_payload"


async def test_a_client_that_goes_away_gets_no_answer_and_stores_nothing(inbox):
    body = text_body("wamid.GONE")
    communicator = ApplicationCommunicator(application, http_scope("POST", url_of(inbox), signed(body)))

    await communicator.send_input({"type": "http.request", "body": body[:10], "more_body": True})
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(TIMEOUT)

    assert await communicator.receive_nothing(timeout=0.2)
    assert await stored_events() == []


# --- everything else goes to the wrapped application ------------------------------------------


def test_the_project_application_wraps_django_for_http():
    webhooks = application.application_mapping["http"]

    assert isinstance(webhooks, WebhookApplication)
    assert webhooks.application is django_asgi_app


async def test_other_paths_reach_the_inner_application_unchanged(fake_inner):
    inner, wrapped = fake_inner
    scopes = [
        http_scope("GET", "/healthz"),
        http_scope("POST", "/webhooks/whatsapp/"),
        http_scope("POST", "/webhooks/whatsapp/token"),
        http_scope("POST", "/webhooks/whatsapp/token/extra/"),
        http_scope("POST", "/api/v1/webhooks/whatsapp/token/"),
    ]

    for scope in scopes:
        communicator = ApplicationCommunicator(wrapped, scope)
        await communicator.send_input({"type": "http.request", "body": b"part one ", "more_body": True})
        await communicator.send_input({"type": "http.request", "body": b"part two"})
        start = await communicator.receive_output(TIMEOUT)
        await communicator.receive_output(TIMEOUT)
        await communicator.wait(TIMEOUT)
        assert (start["status"], start["headers"]) == (204, [(b"x-inner", b"yes")])

    assert [call_scope for call_scope, _ in inner.calls] == scopes
    assert all(reached is sent for (reached, _), sent in zip(inner.calls, scopes, strict=True))
    assert [body for _, body in inner.calls] == [b"part one part two"] * len(scopes)


async def test_a_non_http_scope_on_a_webhook_path_reaches_the_inner_application(fake_inner):
    inner, wrapped = fake_inner
    scope = {"type": "websocket", "path": "/webhooks/whatsapp/token/", "headers": [], "query_string": b""}

    communicator = ApplicationCommunicator(wrapped, scope)
    await communicator.receive_output(TIMEOUT)
    await communicator.wait(TIMEOUT)

    assert [reached for reached, _ in inner.calls] == [scope]


async def test_a_webhook_path_does_not_reach_the_inner_application(fake_inner, inbox):
    inner, wrapped = fake_inner
    body = text_body("wamid.INNER")

    accepted = await call(wrapped, "POST", url_of(inbox), body, signed(body))
    missing = await call(wrapped, "POST", "/webhooks/whatsapp/not-a-token/", body, signed(body))
    no_adapter = await call(wrapped, "POST", "/webhooks/fax/whatever/", body)

    assert (accepted["status"], missing["status"], no_adapter["status"]) == (200, 404, 404)
    assert inner.calls == []
    assert len(await stored_events()) == 1


async def test_healthz_through_the_project_application_is_answered_by_django():
    response = await call(application, "GET", "/healthz")

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}


# --- the inbox cache ---------------------------------------------------------------------------


async def test_the_inbox_cache_keeps_serving_a_bulk_updated_inbox_until_cleared(settings, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    first = text_body("wamid.CACHE1")
    assert (await call(application, "POST", url_of(inbox), first, signed(first)))["status"] == 200

    # update() sends no signal: the process trusts its cached inbox (as another process would).
    await database_sync_to_async(Inbox.objects.all_tenants().filter(pk=inbox.pk).update)(is_active=False)
    second = text_body("wamid.CACHE2")
    cached = await call(application, "POST", url_of(inbox), second, signed(second))
    await database_sync_to_async(inbox_cache_clear)()
    third = text_body("wamid.CACHE3")
    looked_up = await call(application, "POST", url_of(inbox), third, signed(third))

    assert (cached["status"], looked_up["status"]) == (200, 404)
    assert len(await stored_events()) == 2


async def test_without_a_cache_a_bulk_update_is_seen_at_once(settings, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 0
    first = text_body("wamid.NOCACHE1")
    assert (await call(application, "POST", url_of(inbox), first, signed(first)))["status"] == 200

    await database_sync_to_async(Inbox.objects.all_tenants().filter(pk=inbox.pk).update)(is_active=False)
    second = text_body("wamid.NOCACHE2")
    response = await call(application, "POST", url_of(inbox), second, signed(second))

    assert response["status"] == 404
    assert len(await stored_events()) == 1


async def test_deactivating_an_inbox_with_save_is_404_at_once(settings, inbox, dispatched):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    first = text_body("wamid.SAVE1")
    assert (await call(application, "POST", url_of(inbox), first, signed(first)))["status"] == 200

    inbox.is_active = False
    await database_sync_to_async(inbox.save)()
    second = text_body("wamid.SAVE2")
    response = await call(application, "POST", url_of(inbox), second, signed(second))

    assert response["status"] == 404
    assert json.loads(response["body"]) == NOT_FOUND
    assert len(await stored_events()) == 1
    assert len(dispatched) == 1


async def test_a_new_token_saved_on_the_inbox_retires_the_old_one_at_once(settings, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    old_url = url_of(inbox)
    first = text_body("wamid.TOKEN1")
    assert (await call(application, "POST", old_url, first, signed(first)))["status"] == 200

    inbox.secret = "a-brand-new-token"
    await database_sync_to_async(inbox.save)()
    second = text_body("wamid.TOKEN2")
    old = await call(application, "POST", old_url, second, signed(second))
    new = await call(application, "POST", "/webhooks/whatsapp/a-brand-new-token/", second, signed(second))

    assert (old["status"], new["status"]) == (404, 200)
    assert len(await stored_events()) == 2


async def test_inbox_delete_that_deactivates_is_404_at_once(settings, two_tenants, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    await database_sync_to_async(make_conversation)(two_tenants.a.tenant, inbox, SENDER)
    first = text_body("wamid.DELETE1")
    assert (await call(application, "POST", url_of(inbox), first, signed(first)))["status"] == 200

    deleted = await database_sync_to_async(services.inbox_delete)(two_tenants.a.tenant, inbox.pk)
    second = text_body("wamid.DELETE2")
    response = await call(application, "POST", url_of(inbox), second, signed(second))

    assert deleted is False
    assert await database_sync_to_async(Inbox.objects.all_tenants().filter(pk=inbox.pk, is_active=False).count)() == 1
    assert response["status"] == 404
    assert json.loads(response["body"]) == NOT_FOUND
    assert len(await stored_events()) == 1


async def test_inbox_delete_that_deletes_is_404_at_once(settings, two_tenants, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7".encode()
    assert (await call(application, "GET", url_of(inbox), query=query))["status"] == 200

    deleted = await database_sync_to_async(services.inbox_delete)(two_tenants.a.tenant, inbox.pk)
    response = await call(application, "GET", url_of(inbox), query=query)

    assert deleted is True
    assert response["status"] == 404


async def test_deactivating_the_tenant_is_404_at_once(settings, two_tenants, inbox):
    settings.WEBHOOK_INBOX_CACHE_SECONDS = 300
    first = text_body("wamid.TENANT1")
    assert (await call(application, "POST", url_of(inbox), first, signed(first)))["status"] == 200

    tenant = two_tenants.a.tenant
    tenant.is_active = False
    await database_sync_to_async(tenant.save)()
    second = text_body("wamid.TENANT2")
    response = await call(application, "POST", url_of(inbox), second, signed(second))

    assert response["status"] == 404
    assert len(await stored_events()) == 1
