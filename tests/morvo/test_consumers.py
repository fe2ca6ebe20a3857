"""The websocket entry point in-process (the live tests cover it through daphne)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from morvo.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_ping_with_token_answers_with_the_tenant(two_tenants: Any) -> None:
    socket = await _connect(f"/ws/ping/?token={two_tenants.b.token}")
    await socket.send_json_to({"type": "ping", "id": "x1"})
    reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "pong"
    assert reply["id"] == "x1"
    assert reply["tenant"] == "beta"
    await socket.disconnect()


async def test_token_in_authorization_header_works(two_tenants: Any) -> None:
    socket = await _connect("/ws/ping/", headers=[(b"authorization", f"Token {two_tenants.a.token}".encode())])
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=5))["tenant"] == "alpha"
    await socket.disconnect()


async def test_session_cookie_authenticates_a_signed_in_member(two_tenants: Any) -> None:
    cookie = two_tenants.a.web.cookies[settings.SESSION_COOKIE_NAME].value
    socket = await _connect("/ws/ping/", headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())])
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=5))["tenant"] == "alpha"
    await socket.disconnect()


async def test_malformed_frames_get_error_frames_and_the_socket_stays_open(two_tenants: Any) -> None:
    socket = await _connect(f"/ws/ping/?token={two_tenants.a.token}")
    await socket.send_to(text_data="{not json")
    assert await socket.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "invalid_json",
        "detail": "The frame is not valid JSON.",
    }
    await socket.send_json_to(["a", "list"])
    assert (await socket.receive_json_from(timeout=5))["code"] == "bad_request"
    await socket.send_json_to({"type": "dance"})
    assert await socket.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "unknown_type",
        "detail": "Unknown frame type: dance",
    }
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=5))["type"] == "pong"
    await socket.disconnect()


async def test_revoked_token_is_closed_4401_with_nothing_sent(two_tenants: Any) -> None:
    from channels.db import database_sync_to_async

    from morvo import services
    from morvo.models import ApiToken

    @database_sync_to_async
    def revoke() -> None:
        services.api_token_revoke(ApiToken.objects.get(tenant=two_tenants.a.tenant, name="tests"))

    await revoke()
    socket = await _connect(f"/ws/ping/?token={two_tenants.a.token}")
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert await socket.receive_nothing()


async def test_closed_sockets_leave_no_advisory_lock_and_no_queue(two_tenants: Any) -> None:
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer
    from channels_postgres import core as postgres_core
    from django.db import connection

    @database_sync_to_async
    def advisory_locks() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database())")  # fmt: skip
            return int(cursor.fetchone()[0])

    layer = get_channel_layer()
    before = await advisory_locks()
    channels_before = set(layer._channel_advisory_locks)
    queues_before = set(postgres_core.ASYNCIO_EVENT_CHANNEL_MAPPING)
    for _ in range(5):
        socket = await _connect(f"/ws/ping/?token={two_tenants.a.token}")
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from(timeout=5))["type"] == "pong"
        assert len(set(layer._channel_advisory_locks) - channels_before) == 1  # the open socket's
        await socket.disconnect()
    assert await advisory_locks() == before
    assert set(layer._channel_advisory_locks) == channels_before
    assert set(postgres_core.ASYNCIO_EVENT_CHANNEL_MAPPING) == queues_before


async def test_sockets_opening_at_once_share_one_listen_connection(two_tenants: Any) -> None:
    import asyncio

    from channels.db import database_sync_to_async
    from django.db import connection

    @database_sync_to_async
    def listeners() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = 'morvo-channel-listener'")  # fmt: skip
            return int(cursor.fetchone()[0])

    sockets = await asyncio.gather(*[_connect(f"/ws/ping/?token={two_tenants.a.token}") for _ in range(20)])
    for socket in sockets:
        await socket.send_json_to({"type": "ping"})
    replies = await asyncio.gather(*[socket.receive_json_from(timeout=10) for socket in sockets])
    assert [reply["type"] for reply in replies] == ["pong"] * 20
    assert await listeners() == 1
    for socket in sockets:
        await socket.disconnect()


async def test_sends_starting_at_once_on_a_new_loop_share_one_pool() -> None:
    import asyncio

    from morvo.channel_layer import EmbeddedPostgresChannelLayer

    layer = EmbeddedPostgresChannelLayer()
    database = layer.django_db
    pools = await asyncio.gather(*[database.get_db_pool(db_params=layer.db_params) for _ in range(30)])
    try:
        assert len({id(pool) for pool in pools}) == 1
        # And it works: a send to a group nobody is in is one statement, no error.
        await layer.group_send("nobody-here", {"type": "chat.ping"})
    finally:
        await pools[0].close()


async def test_open_websockets_gauge_follows_the_sockets(two_tenants: Any) -> None:
    from morvo.metrics import OPEN_WEBSOCKETS

    gauge = OPEN_WEBSOCKETS.labels(consumer="ping")
    before = gauge._value.get()
    first = await _connect(f"/ws/ping/?token={two_tenants.a.token}")
    second = await _connect(f"/ws/ping/?token={two_tenants.b.token}")
    await first.send_json_to({"type": "ping"})
    await first.receive_json_from(timeout=5)  # connected and counted
    await second.send_json_to({"type": "ping"})
    await second.receive_json_from(timeout=5)
    assert gauge._value.get() == before + 2
    await first.disconnect()
    await second.disconnect()
    assert gauge._value.get() == before
    refused = await _connect("/ws/ping/")  # no auth: closed 4401, never counted
    assert await refused.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert gauge._value.get() == before
