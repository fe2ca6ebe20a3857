"""The live chat through the real (PostgreSQL) channel layer, with turns run at once."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import signing

from conversations import services
from conversations.models import Conversation, Message
from conversations.visitors import COOKIE_NAME, COOKIE_SALT, new_visitor_id
from morvo.asgi import application
from morvo.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def turns_run_at_once() -> Any:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def visitor_cookie(visitor_id: str) -> bytes:
    value = signing.get_cookie_signer(salt=COOKIE_NAME + COOKIE_SALT).sign(visitor_id)
    return f"{COOKIE_NAME}={value}".encode()


async def connect(
    path: str, *, token: str | None = None, cookie: bytes | None = None, ready: bool = True
) -> WebsocketCommunicator:
    """Open a socket; with ``ready``, wait for the status frame that says it is subscribed
    (the frames before it, a replay, are kept in ``socket.initial_frames``)."""
    if token:
        path += ("&" if "?" in path else "?") + f"token={token}"
    headers = [(b"cookie", cookie)] if cookie else []
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect()
    assert connected
    socket.initial_frames = []
    if ready:
        while True:
            frame = await socket.receive_json_from(timeout=10)
            if frame["type"] == "status":
                socket.ready_status = frame
                break
            socket.initial_frames.append(frame)
    return socket


async def frames_until(socket: WebsocketCommunicator, predicate: Any, limit: int = 10) -> list[dict[str, Any]]:
    frames = []
    for _ in range(limit):
        frame = await socket.receive_json_from(timeout=10)
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"no matching frame in {frames}")


def is_reply(frame: dict[str, Any]) -> bool:
    return frame["type"] == "message" and frame["role"] == "assistant"


@database_sync_to_async
def companion(world: Any) -> Conversation:
    return services.conversation_start_companion(world.tenant, world.owner)


@database_sync_to_async
def visitor_conversation(world: Any, visitor_id: str) -> Conversation:
    return services.conversation_start_visitor(world.tenant, visitor_id)


@database_sync_to_async
def messages_of(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        Message.objects.for_tenant(conversation.tenant).filter(conversation=conversation).values_list("role", "content")
    )


async def test_a_message_is_acked_and_answered_in_arabic(two_tenants: Any) -> None:
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await socket.send_json_to({"type": "user_message", "content": "كيف كانت المبيعات؟", "client_message_id": "c-1"})
    frames = await frames_until(socket, is_reply)
    ack = next(frame for frame in frames if frame["type"] == "ack")
    user = next(frame for frame in frames if frame["type"] == "message" and frame["role"] == "user")
    reply = frames[-1]
    assert ack == {"type": "ack", "client_message_id": "c-1", "message_id": user["id"]}
    assert user["content"] == "كيف كانت المبيعات؟"
    assert {"type": "typing", "role": "assistant"} in frames
    assert reply["reply_to"] == user["id"]
    assert reply["metadata"]["language"] == "ar"
    assert reply["content"].startswith("هذا ملخص أداء")  # the analytics report, from the store's data
    assert reply["metadata"]["intent"] == "analytics_report"
    assert [card["label"] for card in reply["metadata"]["kpis"]][:3] == [
        "الإيرادات (30 يومًا)",
        "الطلبات",
        "متوسط قيمة الطلب",
    ]
    assert await messages_of(conversation) == [("user", "كيف كانت المبيعات؟"), ("assistant", reply["content"])]
    await socket.disconnect()


async def test_english_is_answered_in_english(two_tenants: Any) -> None:
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await socket.send_json_to({"type": "user_message", "content": "How were sales?", "client_message_id": "e-1"})
    reply = (await frames_until(socket, is_reply))[-1]
    assert reply["metadata"]["language"] == "en"
    assert reply["content"].startswith(f"Here is {two_tenants.a.tenant.name}'s performance over the last 30 days:")
    await socket.disconnect()


async def test_resending_a_client_message_id_creates_nothing_and_replays_after_reconnect(two_tenants: Any) -> None:
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await socket.send_json_to({"type": "user_message", "content": "مرحبا", "client_message_id": "same"})
    frames = await frames_until(socket, is_reply)
    first_id = next(frame for frame in frames if frame["type"] == "ack")["message_id"]
    await socket.disconnect()

    again = await connect(f"/ws/chat/{conversation.pk}/?after={first_id}", token=two_tenants.a.token)
    [replayed] = again.initial_frames
    assert replayed["type"] == "message"
    assert replayed["reply_to"] == first_id  # the reply sent while we were away
    assert again.ready_status == {"type": "status", "status": "open", "handled_by": "ai", "priority": "low",
                                  "assignee": None}  # fmt: skip
    await again.send_json_to({"type": "user_message", "content": "مرحبا", "client_message_id": "same"})
    assert await again.receive_json_from(timeout=5) == {
        "type": "ack",
        "client_message_id": "same",
        "message_id": first_id,
    }
    assert await again.receive_nothing(timeout=0.5)
    assert len(await messages_of(conversation)) == 2
    await again.disconnect()


@pytest.mark.parametrize(
    ("content", "code"),
    [("   ", "empty_content"), ("x" * 4001, "content_too_long"), (None, "invalid_content"), (42, "invalid_content")],
)
async def test_bad_content_gets_an_error_frame_and_writes_nothing(two_tenants: Any, content: Any, code: str) -> None:
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await socket.send_json_to({"type": "user_message", "content": content, "client_message_id": "bad"})
    frame = await socket.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    assert frame["code"] == code
    assert frame["client_message_id"] == "bad"
    assert await messages_of(conversation) == []
    await socket.disconnect()


async def test_more_than_twenty_messages_a_minute_are_refused(two_tenants: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("conversations.tasks.conversation_turn_task.delay", lambda *args: None)
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    for number in range(21):
        await socket.send_json_to(
            {"type": "user_message", "content": f"رسالة {number}", "client_message_id": f"m{number}"}
        )
    frames = await frames_until(socket, lambda frame: frame["type"] == "error", limit=60)
    assert frames[-1]["code"] == "rate_limited"
    assert frames[-1]["client_message_id"] == "m20"
    assert len(await messages_of(conversation)) == 20
    await socket.disconnect()


async def test_another_tenant_or_no_auth_is_refused(two_tenants: Any) -> None:
    conversation = await companion(two_tenants.a)
    other = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.b.token, ready=False)
    assert await other.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    missing = await connect("/ws/chat/999999/", token=two_tenants.a.token, ready=False)
    assert await missing.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    anonymous = await connect(f"/ws/chat/{conversation.pk}/", ready=False)
    assert await anonymous.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_a_colleagues_companion_chat_is_private(two_tenants: Any) -> None:
    conversation = await companion(two_tenants.a)
    _, token, _ = await database_sync_to_async(two_tenants.a.member)("admin")
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=token, ready=False)
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}


async def test_visitors_reach_only_their_own_conversation_and_never_see_notes(two_tenants: Any) -> None:
    mine, theirs = new_visitor_id(), new_visitor_id()
    conversation = await visitor_conversation(two_tenants.a, mine)
    stranger = await connect(f"/ws/chat/{conversation.pk}/", cookie=visitor_cookie(theirs), ready=False)
    assert await stranger.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    forged = await connect(f"/ws/chat/{conversation.pk}/", cookie=f"{COOKIE_NAME}={mine}".encode(), ready=False)
    assert await forged.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    visitor = await connect(f"/ws/chat/{conversation.pk}/", cookie=visitor_cookie(mine))
    staff = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await database_sync_to_async(services.message_post)(
        two_tenants.a.tenant, conversation, content="internal: VIP", role=Message.Role.NOTE
    )
    assert (await staff.receive_json_from(timeout=5))["role"] == "note"
    assert await visitor.receive_nothing(timeout=0.5)
    await visitor.send_json_to(
        {"type": "user_message", "content": "<script>alert(1)</script> hi", "client_message_id": "v1"}
    )
    frames = await frames_until(visitor, is_reply)
    user = next(frame for frame in frames if frame["type"] == "message" and frame["role"] == "user")
    assert user["content"] == "<script>alert(1)</script> hi"  # stored and sent as text; pages escape it
    await visitor.disconnect()
    await staff.disconnect()


async def test_takeover_stops_the_ai_and_tells_the_visitor(two_tenants: Any) -> None:
    visitor_id = new_visitor_id()
    conversation = await visitor_conversation(two_tenants.a, visitor_id)
    visitor = await connect(f"/ws/chat/{conversation.pk}/", cookie=visitor_cookie(visitor_id))
    await database_sync_to_async(services.conversation_take_over)(
        two_tenants.a.tenant, conversation.pk, two_tenants.a.owner
    )
    frames = await frames_until(visitor, lambda frame: frame["type"] == "status")
    notice = next(frame for frame in frames if frame["type"] == "message")
    assert notice["role"] == "system"
    assert notice["content"] == services.TAKEOVER_NOTICE["ar"]
    assert frames[-1]["handled_by"] == "human"

    await visitor.send_json_to({"type": "user_message", "content": "أين طلبي؟", "client_message_id": "after-takeover"})
    frames = await frames_until(visitor, lambda frame: frame["type"] == "message" and frame["role"] == "user")
    assert await visitor.receive_nothing(timeout=1)  # no AI reply while a person handles it
    roles = [role for role, _ in await messages_of(conversation)]
    assert roles == ["system", "user"]
    await visitor.disconnect()


async def test_a_failing_turn_sends_a_polite_notice_in_the_users_language(two_tenants: Any, monkeypatch: Any) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("model down")

    monkeypatch.setattr("agents_app.pipeline.handle_turn", broken)
    conversation = await companion(two_tenants.a)
    socket = await connect(f"/ws/chat/{conversation.pk}/", token=two_tenants.a.token)
    await socket.send_json_to({"type": "user_message", "content": "ما هي أفضل المنتجات؟", "client_message_id": "f"})
    reply = (await frames_until(socket, is_reply))[-1]
    assert reply["content"] == services.FAILURE_NOTICE["ar"]
    assert reply["metadata"] == {"failure": True, "language": "ar"}
    await socket.disconnect()


def test_a_turn_run_twice_answers_once(two_tenants: Any) -> None:
    conversation = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("conversations.tasks.conversation_turn_task.delay", lambda *args: None)
        message, _ = services.message_post(two_tenants.a.tenant, conversation, content="hello", client_message_id="t")
    first = services.turn_run(two_tenants.a.tenant, message.pk)
    second = services.turn_run(two_tenants.a.tenant, message.pk)
    assert first is not None
    assert second is not None
    assert first.pk == second.pk
    assert Message.objects.for_tenant(two_tenants.a.tenant).filter(role="assistant").count() == 1
    with pytest.raises(Message.DoesNotExist):
        services.turn_run(two_tenants.b.tenant, message.pk)  # another tenant's message is not found


def test_settings_session_cookie_name_is_default() -> None:
    assert settings.SESSION_COOKIE_NAME == "sessionid"


def test_operator_updates_are_validated_and_scoped(two_tenants: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    tenant = two_tenants.a.tenant
    conversation = services.conversation_start_visitor(tenant, new_visitor_id())
    updated = services.conversation_update(
        tenant, conversation.pk, priority="urgent", labels=[" VIP ", "vip", "returns"], assignee=two_tenants.a.owner
    )
    assert (updated.priority, updated.labels, updated.assignee_id) == (
        "urgent",
        ["vip", "returns"],
        two_tenants.a.owner.pk,
    )
    with pytest.raises(services.ChatError) as refused:
        services.conversation_update(tenant, conversation.pk, assignee=two_tenants.b.owner)
    assert refused.value.code == "invalid_assignee"
    with pytest.raises(services.ChatError) as refused:
        services.conversation_update(tenant, conversation.pk, status="snoozed")
    assert refused.value.code == "invalid_snooze"
    later = timezone.now() + timedelta(hours=2)
    assert (
        services.conversation_update(tenant, conversation.pk, status="snoozed", snoozed_until=later).status == "snoozed"
    )
    assert services.conversation_update(tenant, conversation.pk, status="resolved").snoozed_until is None
    with pytest.raises(Conversation.DoesNotExist):
        services.conversation_update(two_tenants.b.tenant, conversation.pk, priority="low")
    assert Conversation.objects.for_tenant(tenant).get(pk=conversation.pk).priority == "urgent"


def test_an_invalid_choice_is_a_chat_error_not_a_crash(two_tenants: Any) -> None:
    conversation = services.conversation_start_visitor(two_tenants.a.tenant, new_visitor_id())
    with pytest.raises(services.ChatError) as refused:
        services.conversation_update(two_tenants.a.tenant, conversation.pk, priority="whenever")
    assert refused.value.code == "invalid_priority"
    assert Conversation.objects.for_tenant(two_tenants.a.tenant).get(pk=conversation.pk).priority == "low"
