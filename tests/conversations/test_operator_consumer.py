"""``/ws/inbox/``: the operators' live list, in-process through the real channel layer."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from conversations import services
from conversations.models import Conversation, Message
from morvo.asgi import application
from morvo.celery import app as celery_app
from morvo.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def turns_run_at_once() -> Any:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


async def connect(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await socket.connect()
    assert connected
    return socket


@database_sync_to_async
def visitor_conversation(tenant: Tenant, visitor_id: str) -> Conversation:
    return services.conversation_start_visitor(tenant, visitor_id, title=f"chat of {visitor_id}")


@database_sync_to_async
def post(tenant: Tenant, conversation: Conversation, content: str) -> None:
    services.message_post(tenant, conversation, content=content)


@database_sync_to_async
def write_in(conversation: Conversation) -> None:
    """A customer message, written directly (no push, no turn): the live list relays a
    customer conversation only once someone wrote in it."""
    Message.objects.all_tenants().create(
        tenant_id=conversation.tenant_id, conversation=conversation, role=Message.Role.USER, content="hello"
    )


@database_sync_to_async
def resolve(tenant: Tenant, conversation: Conversation) -> None:
    services.conversation_update(tenant, conversation.pk, status=Conversation.Status.RESOLVED)


async def test_a_message_in_the_tenant_is_relayed_and_another_tenants_is_not(two_tenants: Any) -> None:
    mine = await visitor_conversation(two_tenants.a.tenant, "v-a")
    theirs = await visitor_conversation(two_tenants.b.tenant, "v-b")
    socket = await connect(f"/ws/inbox/?token={two_tenants.a.token}")

    await post(two_tenants.b.tenant, theirs, "hello from beta")
    assert await socket.receive_nothing(timeout=1)

    await post(two_tenants.a.tenant, mine, "مرحبا، عندكم عود؟")
    frame = await socket.receive_json_from(timeout=10)
    assert frame["type"] == "conversation"
    assert frame["id"] == mine.pk
    assert frame["title"] == "chat of v-a"
    assert frame["kind"] == "customer"
    assert frame["status"] == "open"
    assert frame["unread_for_agents"] == 1
    assert frame["language"] == "ar"
    await socket.disconnect()


async def test_a_status_change_is_relayed(two_tenants: Any) -> None:
    mine = await visitor_conversation(two_tenants.a.tenant, "v-a")
    await write_in(mine)
    socket = await connect(f"/ws/inbox/?token={two_tenants.a.token}")
    await resolve(two_tenants.a.tenant, mine)
    frame = await socket.receive_json_from(timeout=10)
    assert (frame["type"], frame["id"], frame["status"]) == ("conversation", mine.pk, "resolved")
    await socket.disconnect()


async def test_staff_session_cookie_works(two_tenants: Any) -> None:
    mine = await visitor_conversation(two_tenants.b.tenant, "v-b")
    await write_in(mine)
    cookie = two_tenants.b.web.cookies[settings.SESSION_COOKIE_NAME].value
    socket = await connect("/ws/inbox/", headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())])
    await resolve(two_tenants.b.tenant, mine)
    frame = await socket.receive_json_from(timeout=10)
    assert (frame["id"], frame["status"]) == (mine.pk, "resolved")
    await socket.disconnect()


async def test_companion_chats_are_not_relayed(two_tenants: Any) -> None:
    companion = await database_sync_to_async(services.conversation_start_companion)(
        two_tenants.a.tenant, two_tenants.a.owner, "private plans"
    )
    socket = await connect(f"/ws/inbox/?token={two_tenants.a.token}")
    await resolve(two_tenants.a.tenant, companion)
    assert await socket.receive_nothing(timeout=1)
    await socket.disconnect()


@pytest.mark.parametrize("query", ["", "?token=mv_not-a-real-token"])
async def test_no_authentication_is_closed_4401_before_anything_is_sent(two_tenants: Any, query: str) -> None:
    socket = await connect(f"/ws/inbox/{query}")
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert await socket.receive_nothing()


async def test_frames_from_the_client_get_an_error_and_the_socket_stays_open(two_tenants: Any) -> None:
    socket = await connect(f"/ws/inbox/?token={two_tenants.a.token}")
    await socket.send_json_to({"type": "subscribe"})
    assert await socket.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "unknown_type",
        "detail": "Unknown frame type: subscribe",
    }
    await socket.send_to(text_data="{oops")
    assert (await socket.receive_json_from(timeout=5))["code"] == "invalid_json"
    await socket.disconnect()
