"""A turn survives the web process dying: the message is acknowledged, daphne is killed,
and the reply still reaches the user when they reconnect to a new one."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import websockets

from conversations import services
from conversations.models import Message
from tests import live

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _daphne(port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(live.daphne_command(port), cwd=live.BASE_DIR, env=live.live_env(),
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


async def _until(socket: Any, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frames.append(json.loads(await socket.recv()))
            if predicate(frames[-1]):
                return frames


def test_the_reply_arrives_after_the_web_process_is_killed(two_tenants: Any, tmp_path: Path) -> None:
    conversation = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner)
    token = two_tenants.a.token

    first_port = live.free_port()
    first = _daphne(first_port, tmp_path / "daphne-1.log")
    try:
        live.wait_for_http(f"http://127.0.0.1:{first_port}/healthz")

        async def send() -> int:
            url = f"ws://127.0.0.1:{first_port}/ws/chat/{conversation.pk}/?token={token}"
            async with websockets.connect(url) as socket:
                await _until(socket, lambda frame: frame["type"] == "status")
                await socket.send(json.dumps({"type": "user_message", "content": "هل الطلب جاهز؟",
                                              "client_message_id": "before-crash"}))  # fmt: skip
                frames = await _until(socket, lambda frame: frame["type"] == "ack")
                return int(frames[-1]["message_id"])

        message_id = asyncio.run(send())
        # No worker is running yet: the turn waits in the broker while the web process dies.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert not Message.objects.for_tenant(two_tenants.a.tenant).filter(reply_to_id=message_id).exists()

    second_port = live.free_port()
    with (
        live.running(live.worker_command(), live.live_env(), tmp_path / "worker.log"),
        live.running(live.daphne_command(second_port), live.live_env(), tmp_path / "daphne-2.log"),
    ):
        live.wait_for_http(f"http://127.0.0.1:{second_port}/healthz")

        async def reconnect() -> list[dict[str, Any]]:
            url = f"ws://127.0.0.1:{second_port}/ws/chat/{conversation.pk}/?after={message_id}&token={token}"
            async with websockets.connect(url) as socket:
                return await _until(socket, lambda frame: frame["type"] == "message" and frame["role"] == "assistant")

        frames = asyncio.run(reconnect())
    reply = frames[-1]
    assert reply["reply_to"] == message_id
    assert reply["metadata"]["language"] == "ar"
    replies = Message.objects.for_tenant(two_tenants.a.tenant).filter(reply_to_id=message_id, role="assistant")
    assert replies.count() == 1
