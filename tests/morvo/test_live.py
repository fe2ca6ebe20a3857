"""The platform with its real processes: a Celery worker and beat on the embedded
broker, daphne serving websockets, the PostgreSQL channel layer between them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from django_celery_beat.models import PeriodicTask

from morvo.models import Heartbeat
from morvo.tasks import tenant_broadcast_task
from tests import live

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    with live.running(live.worker_command(), live.live_env(), tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def daphne(tmp_path: Path) -> Any:
    port = live.free_port()
    with live.running(live.daphne_command(port), live.live_env(), tmp_path / "daphne.log"):
        live.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield port


def test_heartbeat_goes_through_a_real_worker_and_beat(worker: Any, tmp_path: Path) -> None:
    assert not Heartbeat.objects.filter(name="beat").exists()
    env = live.live_env(HEARTBEAT_INTERVAL_SECONDS="1")
    with live.running(live.beat_command(tmp_path / "beat-schedule"), env, tmp_path / "beat.log"):
        first = live.wait_until(lambda: Heartbeat.objects.filter(name="beat").first(), timeout=30)
        assert first is not None, (tmp_path / "beat.log").read_text()[-2000:]
        later = live.wait_until(
            lambda: Heartbeat.objects.filter(name="beat", beat_at__gt=first.beat_at).first(), timeout=15
        )
        assert later is not None, "the heartbeat was not renewed"
    # Declared in code, synced into the database by beat, where staff can pause it.
    task = PeriodicTask.objects.get(name="morvo-heartbeat")
    assert task.task == "morvo.tasks.heartbeat_task"
    assert task.enabled is True


def test_a_task_paused_in_the_database_stays_paused_when_beat_restarts(worker: Any, tmp_path: Path) -> None:
    env = live.live_env(HEARTBEAT_INTERVAL_SECONDS="1")
    PeriodicTask.objects.create(name="morvo-heartbeat", task="morvo.tasks.heartbeat_task", enabled=False,
                                interval=_interval(1))  # fmt: skip
    with live.running(live.beat_command(tmp_path / "beat-schedule"), env, tmp_path / "beat.log"):
        appeared = live.wait_until(lambda: Heartbeat.objects.filter(name="beat").exists(), timeout=6)
    assert appeared is False
    assert PeriodicTask.objects.get(name="morvo-heartbeat").enabled is False
    assert "Sending due task morvo-heartbeat" not in (tmp_path / "beat.log").read_text()


def _interval(seconds: int) -> Any:
    from django_celery_beat.models import IntervalSchedule

    return IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)


async def _receive(socket: Any, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))  # type: ignore[no-any-return]


def test_ping_and_a_broadcast_from_another_process_reach_the_right_tenant(two_tenants: Any, daphne: int,
                                                                          worker: Any) -> None:  # fmt: skip
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], bool]:
        base = f"ws://127.0.0.1:{daphne}/ws/ping/?token="
        async with (
            websockets.connect(base + two_tenants.a.token) as alpha,
            websockets.connect(base + two_tenants.b.token) as beta,
        ):
            await alpha.send(json.dumps({"type": "ping", "id": 7}))
            pong = await _receive(alpha)
            await beta.send(json.dumps({"type": "ping", "id": 8}))
            await _receive(beta)
            # Enqueued here, run by the worker process, sent through the PostgreSQL layer.
            await asyncio.to_thread(tenant_broadcast_task.delay, two_tenants.a.tenant.pk, {"text": "مرحبا", "n": 1})
            broadcast = await _receive(alpha, timeout=20)
            try:
                await asyncio.wait_for(beta.recv(), 1.5)
                beta_got_it = True
            except TimeoutError:
                beta_got_it = False
            return pong, broadcast, beta_got_it

    pong, broadcast, beta_got_it = asyncio.run(scenario())
    assert pong["type"] == "pong"
    assert pong["id"] == 7
    assert pong["tenant"] == "alpha"
    assert broadcast == {"type": "broadcast", "payload": {"text": "مرحبا", "n": 1}}
    assert beta_got_it is False


def test_websocket_without_valid_auth_is_closed_4401_before_any_message(db: Any, daphne: int) -> None:
    async def scenario(url: str) -> tuple[int | None, list[str]]:
        received: list[str] = []
        async with websockets.connect(url) as socket:
            try:
                while True:
                    received.append(await asyncio.wait_for(socket.recv(), 5))
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None, received
        return None, received

    for url in (f"ws://127.0.0.1:{daphne}/ws/ping/", f"ws://127.0.0.1:{daphne}/ws/ping/?token=mv_wrong"):
        code, received = asyncio.run(scenario(url))
        assert code == 4401
        assert received == []


def test_browser_handshake_from_a_foreign_origin_is_refused(two_tenants: Any, daphne: int) -> None:
    async def scenario() -> int | None:
        url = f"ws://127.0.0.1:{daphne}/ws/ping/?token={two_tenants.a.token}"
        try:
            async with websockets.connect(url, origin="https://evil.example") as socket:
                await socket.recv()
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except websockets.InvalidStatus as refused:
            return refused.response.status_code
        return None

    assert asyncio.run(scenario()) in (403, 4403)


def test_readyz_reports_every_dependency(db: Any, daphne: int, worker: Any, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    def readyz() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{daphne}/readyz", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = readyz()  # no beat yet: not ready, and says why
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["heartbeat"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True

    env = live.live_env(HEARTBEAT_INTERVAL_SECONDS="1")
    with live.running(live.beat_command(tmp_path / "beat-schedule"), env, tmp_path / "beat.log"):
        assert live.wait_until(lambda: Heartbeat.objects.filter(name="beat").exists(), timeout=30)
        status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "channel_layer", "broker", "heartbeat"}


def test_the_web_process_logs_webhook_urls_without_their_token(two_tenants: Any, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from tests.conversations.channel_helpers import make_inbox

    inbox = make_inbox(two_tenants.a.tenant, "telegram")
    port = live.free_port()
    log = tmp_path / "daphne.log"
    with live.running(live.daphne_command(port), live.live_env(), log):
        live.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/telegram/{inbox.secret}/", data=b"{}", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:  # no secret-token header: 401
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        text = live.wait_until(lambda: "/webhooks/telegram/" in log.read_text() and log.read_text(), timeout=10)
    assert '"POST /webhooks/telegram/••••/" 401' in text
    assert inbox.secret not in text
    assert '"GET /healthz" 200' in text  # other paths as they were


def test_the_access_log_mask_keeps_everything_but_the_token() -> None:
    from morvo.runtime.web import mask_path

    assert mask_path("/webhooks/whatsapp/abc123XYZ/") == "/webhooks/whatsapp/••••/"
    assert mask_path("/webhooks/chatwoot/abc123XYZ") == "/webhooks/chatwoot/••••"
    assert mask_path("/api/v1/conversations/12/") == "/api/v1/conversations/12/"
    assert mask_path("/ws/chat/7/") == "/ws/chat/7/"
