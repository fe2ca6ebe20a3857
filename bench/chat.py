"""Chat benchmark: ``.venv/bin/python bench/chat.py`` (the second half of ``make bench``).

N concurrent chat clients (default 200) against one daphne and one Celery worker on the
embedded profile, the offline brain answering. Each client is a visitor of the public chat
with a signed ``morvo_visitor`` cookie and a conversation of its own (visitors, not companion
conversations of one staff owner: the 20-messages-a-minute limit counts per sender, so 200
sockets of one owner would share one limit). It connects to ``/ws/chat/<id>/`` and sends
``--messages`` user messages, one every ``--interval`` seconds, clients staggered over the
interval, each with a unique ``client_message_id``; send→ack and send→assistant reply (the
reply whose ``reply_to`` is the acked message) are timed. In the same run, through the same
server: a bare websocket echo baseline (the same number of clients pinging ``/ws/ping/`` at
the same pace) and a hold test (``--hold`` sockets on ``/ws/chat/`` kept 10 s, then each must
answer a frame).

Like ``bench/platform.py`` (whose helpers are reused): database ``morvo_bench`` on the
embedded server, var folder ``var/bench`` (logs in ``var/bench/logs``), daphne and the worker
started as subprocesses, CPU per party, a table with targets, and
``bench/results/chat-<timestamp>.json``. Exit status 0 when targets are missed (a report),
1 on errors (a refused socket, an error frame, a process that did not start or stop).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# Run as a script, bench/ comes first on sys.path, where bench/platform.py would shadow the
# standard library's ``platform``: drop it before anything imports that.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]

_spec = importlib.util.spec_from_file_location("morvo_bench_platform", BASE_DIR / "bench" / "platform.py")
assert _spec is not None and _spec.loader is not None
bp = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bp  # dataclasses look their module up there
_spec.loader.exec_module(bp)

BenchError = bp.BenchError
say = bp.say
percentile = bp.percentile
summary_ms = bp.summary_ms
HOST = bp.HOST
LOG_DIR: Path = bp.LOG_DIR

CONVERSATION_TITLE = "bench-chat"
COOKIE_NAME = "morvo_visitor"  # conversations.visitors.COOKIE_NAME (not imported: no Django here)

# Targets.
HOLD_TARGET = 1000
TURN_P95_TARGET_MS = 300.0
TURN_TARGET_CLIENTS = 200


# --- preparation (a subprocess: ``chat.py --prepare N``) -------------------------------------


def prepare(count: int) -> dict[str, Any]:
    """The platform bench's preparation (migrate, demo seed, bench tenant, token), then
    ``count`` fresh visitor conversations of the bench tenant with their signed cookies.
    Conversations of earlier chat benches are deleted first (their messages with them)."""
    prepared = bp.prepare()  # calls django.setup()

    from django.core import signing
    from django.db import connection, transaction

    from conversations.models import Conversation
    from conversations.services import conversation_start_visitor
    from conversations.visitors import COOKIE_NAME as cookie_name
    from conversations.visitors import COOKIE_SALT, new_visitor_id
    from morvo.models import Tenant

    assert cookie_name == COOKIE_NAME
    tenant = Tenant.objects.get(slug=bp.TENANT_SLUG)
    started = time.perf_counter()
    deleted, _ = (
        Conversation.objects.all_tenants()
        .filter(tenant=tenant, kind=Conversation.Kind.CUSTOMER, title=CONVERSATION_TITLE)
        .delete()
    )
    signer = signing.get_cookie_signer(salt=COOKIE_NAME + COOKIE_SALT)
    visitors: list[list[Any]] = []
    with transaction.atomic():
        for _ in range(count):
            visitor_id = new_visitor_id()
            conversation = conversation_start_visitor(tenant, visitor_id, title=CONVERSATION_TITLE)
            visitors.append([conversation.pk, signer.sign(visitor_id)])
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k) not in (None, "")}
    return {
        **prepared,
        "deleted_old_rows": deleted,
        "conversations_s": round(time.perf_counter() - started, 2),
        "visitors": visitors,
        "dsn": dsn,
    }


def run_prepare(env: dict[str, str], count: int) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, __file__, "--prepare", str(count)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (LOG_DIR / "chat-prepare.log").write_text(completed.stdout[-2000:] + completed.stderr)
    if completed.returncode != 0:
        raise BenchError(f"preparing the bench database failed; see {LOG_DIR / 'chat-prepare.log'}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- services, CPU, connections ----------------------------------------------------------------


def start_services(env: dict[str, str], concurrency: int) -> tuple[int, dict[str, subprocess.Popen[bytes]]]:
    return bp.start_web_and_worker(env, concurrency, "chat-")  # type: ignore[no-any-return]


class ConnectionSampler:
    """Server sessions (pg_stat_activity) sampled every 0.25 s from a thread of its own."""

    def __init__(self, dsn: dict[str, Any]) -> None:
        self.dsn = dsn
        self.samples: list[tuple[float, int, int]] = []
        self.max_connections = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(**self.dsn, autocommit=True) as conn:
                self.max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
                while not self._stop.is_set():
                    row = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE datname = %s) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend'",
                        [self.dsn.get("dbname")],
                    ).fetchone()
                    assert row is not None
                    self.samples.append((time.perf_counter(), int(row[0]), int(row[1])))
                    self._stop.wait(0.25)
        except Exception as error:  # reported, never fatal
            self.error = f"{type(error).__name__}: {error}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak(self, since: float, until: float) -> dict[str, int]:
        window = [s for s in self.samples if since <= s[0] <= until] or [(0.0, 0, 0)]
        return {"all_databases": max(s[1] for s in window), "bench_database": max(s[2] for s in window)}


# --- websocket clients -------------------------------------------------------------------------


@dataclass
class Turn:
    cmid: str
    client: int
    sent_at: float = 0.0  # perf_counter
    sent_wall: float = 0.0  # time.time(), to split at the server's timestamps
    ack_at: float | None = None
    message_id: int | None = None
    stored_wall: float | None = None  # the user message's created_at
    reply_at: float | None = None
    reply_wall: float | None = None  # the reply's created_at
    replies: int = 0
    failure: bool = False


@dataclass
class Tally:
    turns: dict[str, Turn] = field(default_factory=dict)
    by_message_id: dict[int, Turn] = field(default_factory=dict)
    # Assistant replies seen before the message they answer was known to this client.
    early_replies: dict[int, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    duplicate_deliveries: int = 0
    duplicate_acks: int = 0
    typing_frames: int = 0
    unexpected_closes: int = 0
    errors: list[str] = field(default_factory=list)

    def reply(self, turn: Turn, at: float, frame: dict[str, Any]) -> None:
        turn.replies += 1
        if turn.replies == 1:
            turn.reply_at = at
            turn.reply_wall = _wall(frame.get("created_at"))
            turn.failure = bool((frame.get("metadata") or {}).get("failure"))


def _wall(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


class ChatClient:
    """One socket on ``/ws/chat/<id>/``; a reader task sorts what arrives."""

    def __init__(self, index: int, url: str, cookie: str, tally: Tally) -> None:
        self.index, self.url, self.cookie, self.tally = index, url, cookie, tally
        self.ws: Any = None
        self.seen: set[int] = set()
        self.probes: asyncio.Queue[float] = asyncio.Queue()
        self.closed_code: int | None = None
        self.closing = False
        self.reader: asyncio.Task[None] | None = None

    async def open(self, timeout: float) -> float:
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        self.ws = await connect(
            self.url,
            additional_headers={"Cookie": f"{COOKIE_NAME}={self.cookie}"},
            open_timeout=timeout,
            ping_interval=None,
            max_queue=None,
        )
        elapsed = time.perf_counter() - started
        self.reader = asyncio.create_task(self._read())
        return elapsed

    async def probe(self, timeout: float) -> float:
        """A frame of an unknown type: the consumer answers it with an error frame, once it
        has authorized the socket and joined the conversation's group (frames are handled
        after connect() is done)."""
        started = time.perf_counter()
        await self.ws.send('{"type": "bench_probe"}')
        answered = await asyncio.wait_for(self.probes.get(), timeout)
        return answered - started

    async def send_message(self, turn: Turn) -> None:
        turn.sent_wall = time.time()
        turn.sent_at = time.perf_counter()
        await self.ws.send(
            json.dumps(
                {"type": "user_message", "content": f"Hello, bench turn {turn.cmid}", "client_message_id": turn.cmid}
            )
        )

    def _known(self, turn: Turn, message_id: int) -> None:
        if turn.message_id is None:
            turn.message_id = message_id
            self.tally.by_message_id[message_id] = turn
            for at, frame in self.tally.early_replies.pop(message_id, []):
                self.tally.reply(turn, at, frame)

    async def _read(self) -> None:
        import websockets

        tally = self.tally
        try:
            async for raw in self.ws:
                at = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    message_id = int(frame["id"])
                    if message_id in self.seen:
                        tally.duplicate_deliveries += 1
                        continue
                    self.seen.add(message_id)
                    if frame.get("role") == "user":
                        turn = tally.turns.get(str(frame.get("client_message_id")))
                        if turn is not None:
                            turn.stored_wall = _wall(frame.get("created_at"))
                            self._known(turn, message_id)
                    elif frame.get("role") == "assistant":
                        answered = tally.by_message_id.get(int(frame.get("reply_to") or 0))
                        if answered is not None:
                            tally.reply(answered, at, frame)
                        else:
                            tally.early_replies.setdefault(int(frame.get("reply_to") or 0), []).append((at, frame))
                elif kind == "ack":
                    turn = tally.turns.get(str(frame.get("client_message_id")))
                    if turn is None:
                        tally.errors.append(f"ack of an unknown message: {frame!r}"[:200])
                    elif turn.ack_at is not None:
                        tally.duplicate_acks += 1
                    else:
                        turn.ack_at = at
                        self._known(turn, int(frame["message_id"]))
                elif kind == "typing":
                    tally.typing_frames += 1
                elif kind == "status":
                    pass  # sent once subscribed, after connecting (docs/websocket.md)
                elif kind == "error" and frame.get("code") == "unknown_type":
                    self.probes.put_nowait(at)
                else:
                    tally.errors.append(f"client {self.index}: unexpected frame {frame!r}"[:200])
        except websockets.ConnectionClosed:
            pass
        finally:
            close = getattr(self.ws, "close_code", None)
            self.closed_code = close
            if not self.closing:
                tally.unexpected_closes += 1
                tally.errors.append(f"client {self.index}: socket closed by the server (code {close})")

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


async def open_all(
    clients: list[ChatClient], concurrency: int, timeout: float, errors: list[str]
) -> tuple[list[ChatClient], list[float], list[float], float]:
    """Handshake every client (at most ``concurrency`` at a time), then probe each once.
    Returns the ready clients, connect times, connect→ready times and the wall time."""
    import websockets

    gate = asyncio.Semaphore(concurrency)
    connect_times: list[float] = []
    ready_times: list[float] = []

    async def one(client: ChatClient) -> ChatClient | None:
        async with gate:
            try:
                connected = await client.open(timeout)
            except (OSError, TimeoutError, websockets.WebSocketException) as error:
                errors.append(f"connect {client.index}: {type(error).__name__}: {error}"[:200])
                return None
        try:
            ready = await client.probe(timeout)
        except (TimeoutError, websockets.WebSocketException) as error:
            errors.append(f"probe {client.index}: {type(error).__name__} (close code {client.closed_code})")
            return None
        connect_times.append(connected)
        ready_times.append(connected + ready)
        return client

    started = time.perf_counter()
    opened = await asyncio.gather(*(one(c) for c in clients))
    return [c for c in opened if c is not None], connect_times, ready_times, time.perf_counter() - started


def schedule(clients: int, messages: int, interval: float, start: float) -> list[list[float]]:
    """Client i sends message k at start + k·interval + i·interval/clients."""
    return [[start + k * interval + i * interval / clients for k in range(messages)] for i in range(clients)]


async def chat_phase(port: int, visitors: list[list[Any]], args: argparse.Namespace, meter: Any) -> dict[str, Any]:
    tally = Tally()
    run_id = secrets.token_hex(4)
    clients = [
        ChatClient(i, f"ws://{HOST}:{port}/ws/chat/{conversation_id}/", cookie, tally)
        for i, (conversation_id, cookie) in enumerate(visitors)
    ]
    connect_errors: list[str] = []
    live, connect_times, ready_times, all_open_s = await open_all(clients, args.connect_concurrency, 60, connect_errors)
    await asyncio.sleep(0.5)

    plan = schedule(len(live), args.messages, args.interval, time.perf_counter() + 0.2)
    meter.start()
    began = time.perf_counter()
    late: list[float] = []  # how far behind schedule each send went out (the client's own lag)

    async def sender(n: int, client: ChatClient) -> None:
        for k, when in enumerate(plan[n]):
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            late.append(time.perf_counter() - when)
            turn = Turn(cmid=f"bench-{run_id}-{client.index}-{k}", client=client.index)
            tally.turns[turn.cmid] = turn
            try:
                await client.send_message(turn)
            except Exception as error:
                tally.errors.append(f"send {turn.cmid}: {type(error).__name__}: {error}"[:200])

    await asyncio.gather(*(sender(n, c) for n, c in enumerate(live)))
    last_send = time.perf_counter()
    # Wait for every reply, at most the reply timeout after the last send.
    deadline = last_send + args.reply_timeout
    while time.perf_counter() < deadline and any(t.reply_at is None for t in tally.turns.values()):
        await asyncio.sleep(0.05)
    finished = time.perf_counter()
    cpu = meter.stop()
    await asyncio.sleep(args.grace)  # late duplicates
    await asyncio.gather(*(c.close() for c in live), return_exceptions=True)

    turns = list(tally.turns.values())
    timeout = args.reply_timeout
    in_time = [t for t in turns if t.reply_at is not None and t.reply_at - t.sent_at <= timeout]
    acked = [t for t in turns if t.ack_at is not None]
    lost = [t for t in turns if t not in in_time]
    duplicated = sum(1 for t in turns if t.replies > 1) + tally.duplicate_deliveries + tally.duplicate_acks
    last_reply = max((t.reply_at for t in in_time if t.reply_at is not None), default=finished)
    legs: dict[str, list[float]] = {"to_stored": [], "stored_to_reply": [], "reply_delivery": []}
    for t in in_time:
        if t.stored_wall is not None and t.reply_wall is not None and t.reply_at is not None:
            legs["to_stored"].append(max(0.0, t.stored_wall - t.sent_wall))
            legs["stored_to_reply"].append(max(0.0, t.reply_wall - t.stored_wall))
            received_wall = t.sent_wall + (t.reply_at - t.sent_at)
            legs["reply_delivery"].append(max(0.0, received_wall - t.reply_wall))
    span = last_reply - began
    return {
        "clients_requested": len(clients),
        "clients_ready": len(live),
        "all_open_s": round(all_open_s, 2),
        "connect": summary_ms(connect_times),
        "connect_to_ready": summary_ms(ready_times),
        "connect_errors": connect_errors[:10],
        "messages_sent": len(turns),
        "offered_messages_per_s": round(len(live) / args.interval, 1),
        "send_lag": summary_ms(late),
        "acked": len(acked),
        "ack": summary_ms([t.ack_at - t.sent_at for t in acked if t.ack_at is not None]),
        "turn": summary_ms([t.reply_at - t.sent_at for t in in_time if t.reply_at is not None]),
        "turn_legs": {name: summary_ms(values) for name, values in legs.items()},
        "replies_in_time": len(in_time),
        "replied_late": sum(1 for t in lost if t.reply_at is not None),
        "lost": len(lost),
        "lost_samples": [t.cmid + (" (acked)" if t.ack_at else " (never acked)") for t in lost[:5]],
        "failure_notices": sum(1 for t in in_time if t.failure),
        "duplicated": duplicated,
        "duplicate_replies": sum(1 for t in turns if t.replies > 1),
        "duplicate_deliveries": tally.duplicate_deliveries,
        "duplicate_acks": tally.duplicate_acks,
        "typing_frames": tally.typing_frames,
        "achieved_messages_per_s": round(len(in_time) / span, 1) if span > 0 else 0.0,
        "first_send_to_last_reply_s": round(span, 2),
        "sending_s": round(last_send - began, 2),
        "waited_for_replies_s": round(finished - last_send, 2),
        "unexpected_closes": tally.unexpected_closes,
        "errors": len(tally.errors),
        "error_samples": tally.errors[:10],
        "cpu_percent_of_one_core": cpu,
        "window": (began, finished),
        "run_id": run_id,
    }


def server_side_counts(dsn: dict[str, Any], run_id: str) -> dict[str, Any]:
    """What the database says about this run's messages, once everything has drained: a
    message missing a reply here was never answered, not only answered late."""
    import psycopg

    with psycopg.connect(**dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(r.id), count(*) - count(DISTINCT r.reply_to_id) "
            "FROM conversations_message m LEFT JOIN conversations_message r "
            "ON r.reply_to_id = m.id AND r.role = 'assistant' "
            "WHERE m.client_message_id LIKE %s AND m.role = 'user'",
            [f"bench-{run_id}-%"],
        ).fetchone()
    assert row is not None
    return {"user_messages_stored": row[0], "assistant_replies": row[1], "unanswered": row[2]}


async def echo_phase(port: int, token: str, args: argparse.Namespace, meter: Any) -> dict[str, Any]:
    """The same number of clients, the same pace, on ``/ws/ping/``: the websocket floor."""
    import websockets
    from websockets.asyncio.client import connect

    url = f"ws://{HOST}:{port}/ws/ping/?token={token}"
    errors: list[str] = []
    connect_times: list[float] = []
    gate = asyncio.Semaphore(args.connect_concurrency)

    async def open_one() -> Any:
        async with gate:
            started = time.perf_counter()
            try:
                ws = await connect(url, open_timeout=60, ping_interval=None, max_queue=None)
            except (OSError, TimeoutError, websockets.WebSocketException) as error:
                errors.append(f"connect: {type(error).__name__}: {error}"[:200])
                return None
            connect_times.append(time.perf_counter() - started)
            return ws

    started = time.perf_counter()
    opened = await asyncio.gather(*(open_one() for _ in range(args.clients)))
    all_open_s = time.perf_counter() - started
    live = [ws for ws in opened if ws is not None]
    await asyncio.sleep(0.5)

    async def ping(ws: Any, ident: int) -> float | None:
        begun = time.perf_counter()
        try:
            await ws.send(json.dumps({"type": "ping", "id": ident}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (TimeoutError, websockets.WebSocketException, ValueError) as error:
            errors.append(f"ping: {type(error).__name__}: {error}"[:200])
            return None
        if answer.get("type") != "pong" or answer.get("id") != ident:
            errors.append(f"ping: unexpected answer {answer!r}"[:200])
            return None
        return time.perf_counter() - begun

    # Warm-up: one ping each (the first frame of a socket), not measured.
    await asyncio.gather(*(ping(ws, -1 - n) for n, ws in enumerate(live)))
    plan = schedule(len(live), args.messages, args.interval, time.perf_counter() + 0.2)
    times: list[float] = []
    meter.start()
    began = time.perf_counter()

    async def paced(n: int, ws: Any) -> None:
        for k, when in enumerate(plan[n]):
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            elapsed = await ping(ws, k * 100000 + n)
            if elapsed is not None:
                times.append(elapsed)

    await asyncio.gather(*(paced(n, ws) for n, ws in enumerate(live)))
    finished = time.perf_counter()
    cpu = meter.stop()
    await asyncio.gather(*(ws.close() for ws in live), return_exceptions=True)
    return {
        "clients_requested": args.clients,
        "clients_open": len(live),
        "all_open_s": round(all_open_s, 2),
        "connect": summary_ms(connect_times),
        "pings": len(times),
        "ping": summary_ms(times),
        "errors": len(errors),
        "error_samples": errors[:10],
        "cpu_percent_of_one_core": cpu,
        "window": (began, finished),
    }


async def hold_phase(
    port: int, token: str, visitors: list[list[Any]], args: argparse.Namespace, meter: Any
) -> dict[str, Any]:
    """Open ``--hold`` sockets, keep them ``--hold-seconds``, then each must still be open and
    answer one frame (chat: a probe answered with an error frame; ping: a pong)."""
    import websockets
    from websockets.asyncio.client import connect

    errors: list[str] = []
    meter.start()
    began = time.perf_counter()
    if args.hold_path == "chat":
        tally = Tally()
        clients = [
            ChatClient(i, f"ws://{HOST}:{port}/ws/chat/{conversation_id}/", cookie, tally)
            for i, (conversation_id, cookie) in enumerate(visitors)
        ]
        live, connect_times, ready_times, all_open_s = await open_all(clients, args.connect_concurrency, 60, errors)
        opened_at = time.perf_counter()
        await asyncio.sleep(args.hold_seconds)
        still_open = [c for c in live if c.closed_code is None and c.reader is not None and not c.reader.done()]

        async def answer(client: ChatClient) -> float | None:
            try:
                return await client.probe(10)
            except (TimeoutError, websockets.WebSocketException) as error:
                errors.append(f"hold probe {client.index}: {type(error).__name__}")
                return None

        answers = await asyncio.gather(*(answer(c) for c in still_open))
        held_for = time.perf_counter() - opened_at
        finished = time.perf_counter()
        cpu = meter.stop()
        await asyncio.gather(*(c.close() for c in live), return_exceptions=True)
        errors.extend(tally.errors)
        unexpected = tally.unexpected_closes
    else:
        url = f"ws://{HOST}:{port}/ws/ping/?token={token}"
        gate = asyncio.Semaphore(args.connect_concurrency)
        connect_times, ready_times = [], []

        async def open_one() -> Any:
            async with gate:
                started = time.perf_counter()
                try:
                    ws = await connect(url, open_timeout=60, ping_interval=None, max_queue=None)
                except (OSError, TimeoutError, websockets.WebSocketException) as error:
                    errors.append(f"connect: {type(error).__name__}: {error}"[:200])
                    return None
                connect_times.append(time.perf_counter() - started)
                return ws

        opened = await asyncio.gather(*(open_one() for _ in range(args.hold)))
        all_open_s = time.perf_counter() - began
        sockets = [ws for ws in opened if ws is not None]
        opened_at = time.perf_counter()
        await asyncio.sleep(args.hold_seconds)

        async def pong(n: int, ws: Any) -> float | None:
            started = time.perf_counter()
            try:
                await ws.send(json.dumps({"type": "ping", "id": n}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except (TimeoutError, websockets.WebSocketException, ValueError) as error:
                errors.append(f"hold ping {n}: {type(error).__name__}")
                return None
            return time.perf_counter() - started if reply.get("type") == "pong" else None

        answers = await asyncio.gather(*(pong(n, ws) for n, ws in enumerate(sockets)))
        held_for = time.perf_counter() - opened_at
        finished = time.perf_counter()
        cpu = meter.stop()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        live, unexpected = sockets, 0
    answered = [a for a in answers if a is not None]
    return {
        "path": args.hold_path,
        "requested": args.hold,
        "opened": len(live),
        "all_open_s": round(all_open_s, 2),
        "connect": summary_ms(connect_times),
        "connect_to_ready": summary_ms(ready_times),
        "held_s": round(held_for, 1),
        "held": len(answered),
        "answer": summary_ms(answered),
        "unexpected_closes": unexpected,
        "errors": len(errors),
        "error_samples": errors[:10],
        "cpu_percent_of_one_core": cpu,
        "window": (began, finished),
    }


# --- logs ------------------------------------------------------------------------------------------

TASK_DONE = re.compile(r"conversation_turn_task\[[^\]]+\] succeeded in ([0-9.]+)s")


def scan_logs() -> dict[str, Any]:
    """Problems the servers wrote down, and the turn tasks' own run time (from the worker)."""
    found: dict[str, Any] = {}
    for name in ("daphne", "worker"):
        path = LOG_DIR / f"chat-{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found[name] = {
            "too_many_clients": text.count("too many clients"),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "error_lines": sum(1 for line in text.splitlines() if " ERROR" in line or "ERROR/" in line),
            "samples": [line[:200] for line in text.splitlines() if "too many clients" in line or "ERROR" in line][:5],
        }
        if name == "worker":
            found["turn_task_run"] = summary_ms([float(v) for v in TASK_DONE.findall(text)])
    return found


# --- report ----------------------------------------------------------------------------------------


def verdicts(figures: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    rows: list[tuple[str, str, str, str]] = []
    errors: list[str] = []

    def row(metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((metric, value, target, "" if ok is None else ("PASS" if ok else "FAIL")))

    config = figures["config"]
    echo = figures.get("echo")
    if echo:
        row(
            f"echo /ws/ping/: {echo['clients_open']} clients",
            f"p50 {echo['ping']['p50_ms']:.1f} p95 {echo['ping']['p95_ms']:.1f} ms ({echo['pings']} pings)",
        )
        row("echo connect p50 / p95", f"{echo['connect']['p50_ms']:.0f} / {echo['connect']['p95_ms']:.0f} ms")
        if echo["errors"] or echo["clients_open"] < echo["clients_requested"]:
            errors.append(f"echo: {echo['errors']} errors: {echo['error_samples']}")
    chat = figures.get("chat")
    if chat:
        row(
            "chat connect p50 / p95",
            f"{chat['connect']['p50_ms']:.0f} / {chat['connect']['p95_ms']:.0f} ms "
            f"(ready {chat['connect_to_ready']['p50_ms']:.0f} / {chat['connect_to_ready']['p95_ms']:.0f})",
        )
        turn = chat["turn"]
        ok = chat["clients_ready"] >= TURN_TARGET_CLIENTS and turn["p95_ms"] <= TURN_P95_TARGET_MS
        row(
            f"chat turn send→reply, {chat['clients_ready']} chatters",
            f"p50 {turn['p50_ms']:.0f} p95 {turn['p95_ms']:.0f} p99 {turn['p99_ms']:.0f} ms",
            f"p95 ≤ {TURN_P95_TARGET_MS:.0f} ms @ {TURN_TARGET_CLIENTS}",
            ok,
        )
        legs = chat["turn_legs"]
        row(
            "  turn legs p50 (p95)",
            f"stored {legs['to_stored']['p50_ms']:.0f} ({legs['to_stored']['p95_ms']:.0f}), "
            f"queue+turn {legs['stored_to_reply']['p50_ms']:.0f} ({legs['stored_to_reply']['p95_ms']:.0f}), "
            f"delivery {legs['reply_delivery']['p50_ms']:.0f} ({legs['reply_delivery']['p95_ms']:.0f}) ms",
        )
        task = figures.get("logs", {}).get("turn_task_run")
        if task and task["n"]:
            row("  turn task run time (worker)", f"p50 {task['p50_ms']:.0f} p95 {task['p95_ms']:.0f} ms")
        row("chat ack send→ack", f"p50 {chat['ack']['p50_ms']:.0f} p95 {chat['ack']['p95_ms']:.0f} ms")
        row(
            "chat messages/s achieved",
            f"{chat['achieved_messages_per_s']:.1f} (offered {chat['offered_messages_per_s']:.0f}; "
            f"{chat['replies_in_time']}/{chat['messages_sent']} in {chat['first_send_to_last_reply_s']:.1f} s)",
        )
        row(
            f"chat lost (no reply in {config['reply_timeout_s']:g} s)",
            f"{chat['lost']} ({chat['replied_late']} late)",
            "0",
            chat["lost"] == 0,
        )
        server = chat.get("server_side") or {}
        if "unanswered" in server:
            row(
                "  in the database at the end",
                f"{server['user_messages_stored']} stored, {server['assistant_replies']} replies, "
                f"{server['unanswered']} unanswered",
            )
        row(
            "chat duplicated",
            f"{chat['duplicated']} (replies {chat['duplicate_replies']}, deliveries "
            f"{chat['duplicate_deliveries']}, acks {chat['duplicate_acks']})",
            "0",
            chat["duplicated"] == 0,
        )
        if chat["failure_notices"]:
            row("chat failure notices", str(chat["failure_notices"]))
        if chat["send_lag"]["p95_ms"] > 50:
            row("chat client send lag p95", f"{chat['send_lag']['p95_ms']:.0f} ms (the client fell behind)")
        if chat["errors"] or chat["clients_ready"] < chat["clients_requested"]:
            errors.append(f"chat: {chat['errors']} errors: {chat['error_samples'] or chat['connect_errors']}")
    hold = figures.get("hold")
    if "settle_before_hold_s" in figures:
        row("chat backlog drained before hold", f"{figures['settle_before_hold_s']:.0f} s (daphne + worker idle)")
    if hold:
        row(
            f"hold: /ws/{hold['path']}/ sockets held {hold['held_s']:.0f} s",
            f"{hold['held']} / {hold['requested']} (opened {hold['opened']} in {hold['all_open_s']:.1f} s)",
            f"{HOLD_TARGET:,} held",
            hold["held"] >= HOLD_TARGET,
        )
        row(
            "hold connect p50 / p95; answer p95",
            f"{hold['connect']['p50_ms']:.0f} / {hold['connect']['p95_ms']:.0f} ms; {hold['answer']['p95_ms']:.0f} ms",
        )
        refused = [e for e in hold["error_samples"] if "4401" in e or "4404" in e or "4403" in e]
        if refused or hold["unexpected_closes"]:
            errors.append(f"hold: sockets refused or closed: {hold['error_samples']}")
    pg = figures.get("postgres_connections")
    if pg:
        row(
            "PostgreSQL sessions peak (all dbs)",
            ", ".join(f"{k} {v['all_databases']}" for k, v in pg["peaks"].items())
            + f" / max_connections {pg['max_connections']}",
        )
    logs = figures.get("logs")
    if logs:
        too_many = logs["daphne"]["too_many_clients"] + logs["worker"]["too_many_clients"]
        row("'too many clients' in server logs", str(too_many), "0", too_many == 0)
        tracebacks = logs["daphne"]["tracebacks"] + logs["worker"]["tracebacks"]
        if tracebacks:
            row("tracebacks in server logs", str(tracebacks))
            errors.append(f"tracebacks in the server logs: {logs['daphne']['samples'] + logs['worker']['samples']}")
    exits = figures.get("service_exit_codes") or {}
    bad = {name: code for name, code in exits.items() if code not in (0, -signal.SIGTERM)}
    if bad:
        errors.append(f"bench services exited badly: {bad}")
    return rows, errors


def print_report(figures: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    machine, config = figures["machine"], figures["config"]
    print()
    print(
        f"Morvo chat bench — {figures['started_at']} — {machine['cpu_count']} CPU cores, load "
        f"{machine['loadavg_at_start']} at start; {config['clients']} clients × {config['messages']} messages, "
        f"{config['interval_s']:g} s apart; worker concurrency {config['worker_concurrency']}, broker polling "
        f"{config['broker_polling_interval_s']} s; visitor conversations (signed cookies); DEBUG=0"
    )
    phases = [(name, figures[name]) for name in ("echo", "chat", "hold") if figures.get(name)]
    if phases:
        print()
        parties = list(phases[0][1]["cpu_percent_of_one_core"])
        print(f"{'CPU % of one core':<20}" + "".join(f"{name[:22]:>24}" for name in parties))
        for name, phase in phases:
            cpu = phase["cpu_percent_of_one_core"]
            print(f"{name:<20}" + "".join(f"{cpu.get(p, 0):>24.0f}" for p in parties))
    print()
    widths = [max(len(r[i]) for r in [*rows, ("metric", "value", "target", "result")]) + 3 for i in range(3)]
    print(f"{'metric':<{widths[0]}}{'value':<{widths[1]}}{'target':<{widths[2]}}result")
    for metric, value, target, result in rows:
        print(f"{metric:<{widths[0]}}{value:<{widths[1]}}{target:<{widths[2]}}{result}")


# --- orchestration ---------------------------------------------------------------------------------


def raise_fd_limit(needed: int) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return {"soft": int(soft), "hard": int(hard), "needed": needed}


async def run_phases(
    port: int, prepared: dict[str, Any], args: argparse.Namespace, meter: Any, figures: dict[str, Any]
) -> None:
    visitors = prepared["visitors"]
    say(f"echo baseline: {args.clients} clients on /ws/ping/, {args.messages} pings each, {args.interval:g} s apart")
    figures["echo"] = await echo_phase(port, prepared["token"], args, meter)
    echo = figures["echo"]
    say(f"  ping p50 {echo['ping']['p50_ms']} p95 {echo['ping']['p95_ms']} ms, errors {echo['errors']}")

    say(f"chat: {args.clients} visitors on /ws/chat/<id>/, {args.messages} messages each, {args.interval:g} s apart")
    figures["chat"] = await chat_phase(port, visitors[: args.clients], args, meter)
    chat = figures["chat"]
    say(
        f"  turn p50 {chat['turn']['p50_ms']} p95 {chat['turn']['p95_ms']} ms, lost {chat['lost']}, "
        f"duplicated {chat['duplicated']}, errors {chat['errors']}"
    )
    if args.hold:
        # Start the hold test on a quiet server: let daphne and the worker finish the backlog.
        figures["settle_before_hold_s"] = await bp.settle(meter, args.settle_timeout)
        say(f"  server settled in {figures['settle_before_hold_s']:.1f}s")
        say(f"hold: {args.hold} sockets on /ws/{args.hold_path}/ for {args.hold_seconds:g} s")
        figures["hold"] = await hold_phase(port, prepared["token"], visitors[args.clients :], args, meter)
        hold = figures["hold"]
        say(f"  held {hold['held']}/{hold['requested']}, errors {hold['errors']} {hold['error_samples'][:3]}")


def measure(args: argparse.Namespace, env: dict[str, str], prepared: dict[str, Any], figures: dict[str, Any]) -> None:
    # Count this process as a user of the embedded server (as Django does in every process),
    # so it is not stopped between the preparation and the servers' start, nor under the
    # connection sampler.
    from morvo.runtime import embedded_db

    embedded_db.ensure_for_process(bp.PGDATA, args.database)
    sampler = ConnectionSampler(prepared["dsn"])
    sampler.start()
    port, processes = start_services(env, args.worker_concurrency)
    try:
        started = time.perf_counter()
        alive = processes["daphne"].poll
        if not bp.wait_for_http(f"http://{HOST}:{port}/healthz", 90, alive=lambda: alive() is None):
            raise BenchError(f"daphne did not answer; see {LOG_DIR / 'chat-daphne.log'}")
        say(f"daphne serving on port {port} ({time.perf_counter() - started:.1f}s)")
        deadline = time.monotonic() + 90
        while b"ready." not in (LOG_DIR / "chat-worker.log").read_bytes():
            if processes["worker"].poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the Celery worker did not start; see {LOG_DIR / 'chat-worker.log'}")
            time.sleep(0.1)
        say(f"celery worker ready ({time.perf_counter() - started:.1f}s)")
        meter = bp.WorkerCpuMeter(processes["daphne"].pid, processes["worker"].pid)
        asyncio.run(run_phases(port, prepared, args, meter, figures))
    finally:
        figures["service_exit_codes"] = {
            name: bp.stop_process(process, signal.SIGTERM, grace=20) for name, process in processes.items()
        }
        sampler.stop()
        peaks = {}
        for name in ("echo", "chat", "hold"):
            phase = figures.get(name)
            if phase:
                since, until = phase.pop("window")
                peaks[name] = sampler.peak(since, until)
        figures["postgres_connections"] = {
            "max_connections": sampler.max_connections,
            "peaks": peaks,
            "overall_peak": sampler.peak(0, float("inf")),
            "sampler_error": sampler.error,
        }
        figures["logs"] = scan_logs()
        if figures.get("chat"):
            try:
                figures["chat"]["server_side"] = server_side_counts(prepared["dsn"], figures["chat"]["run_id"])
            except Exception as error:  # reported, not fatal
                figures["chat"]["server_side"] = {"error": f"{type(error).__name__}: {error}"}


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--prepare", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database", default=bp.BENCH_DATABASE, help="database on the embedded server")
    parser.add_argument("--clients", type=int, default=200, help="concurrent chat clients (and echo clients)")
    parser.add_argument("--messages", type=int, default=4, help="messages per chat client")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between one client's messages")
    parser.add_argument("--reply-timeout", type=float, default=30.0, help="a message without a reply by then is lost")
    parser.add_argument("--grace", type=float, default=2.0, help="seconds to keep listening for duplicates")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--polling-interval", type=float, default=None, help="broker polling interval (CELERY_POLLING_INTERVAL)"
    )
    parser.add_argument("--hold", type=int, default=1000, help="sockets of the hold test (0: skip it)")
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument("--hold-path", choices=("chat", "ping"), default="chat")
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="longest wait for the chat backlog before the hold test"
    )
    parser.add_argument("--connect-concurrency", type=int, default=100, help="handshakes in flight at once")
    parser.add_argument("--throttle-rate", default="100000/s", help="API throttle rates during the bench")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.prepare is None:
        if not 1 <= args.clients <= 1000:
            parser.error("--clients: 1 to 1000")
        if args.messages > 20:
            parser.error("--messages: at most 20 (the chat allows 20 messages a minute per sender)")
    args.debug = False
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    env = bp.bench_environment(args)
    if args.polling_interval is not None:
        env["CELERY_POLLING_INTERVAL"] = str(args.polling_interval)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(BASE_DIR)

    if args.prepare is not None:
        print(json.dumps(prepare(args.prepare)), flush=True)
        return 0

    bp.BENCH_VAR_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    figures: dict[str, Any] = {
        "started_at": stamp,
        "machine": bp.machine_info(),
        "config": {
            "database": args.database,
            "clients": args.clients,
            "messages": args.messages,
            "interval_s": args.interval,
            "reply_timeout_s": args.reply_timeout,
            "worker_concurrency": args.worker_concurrency,
            "broker_polling_interval_s": float(env.get("CELERY_POLLING_INTERVAL") or 0.05),
            "hold": args.hold,
            "hold_seconds": args.hold_seconds,
            "hold_path": args.hold_path,
            "connect_concurrency": args.connect_concurrency,
            "conversations": "visitor (signed morvo_visitor cookie), one per client",
            "brain": "offline (agents_app.pipeline.handle_turn)",
            "logs": str(LOG_DIR),
        },
    }
    failure: str | None = None
    try:
        figures["fd_limit"] = raise_fd_limit(args.hold + 2 * args.clients + 256)
        count = args.clients + (args.hold if args.hold_path == "chat" else 0)
        say(f"preparing database {args.database}: bench tenant, token, {count} visitor conversations")
        prepared = run_prepare(env, count)
        figures["prepare"] = {k: v for k, v in prepared.items() if k not in ("token", "visitors", "dsn")}
        measure(args, env, prepared, figures)
    except BenchError as error:
        failure = str(error)
    except KeyboardInterrupt:
        failure = "interrupted"
    figures["wall_s"] = round(time.perf_counter() - began, 1)

    rows, errors = verdicts(figures)
    if failure:
        errors.insert(0, failure)
    print_report(figures, rows)
    return bp.save_and_report(figures, rows, errors, "chat", stamp)  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
