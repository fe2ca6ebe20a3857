"""Webhook benchmark: ``.venv/bin/python bench/webhooks.py`` (``make bench BENCH=webhooks``).

Signed WhatsApp Cloud API webhooks (``X-Hub-Signature-256``) posted to one inbox's endpoint
at a steady ``--rate`` (default 200 requests/s) for ``--duration`` seconds (default 30),
open-loop (each request leaves at its scheduled time whatever the earlier ones are doing),
from ``--senders`` customers. One request in ``--duplicate-every`` (default 20) repeats an
earlier one, as a provider retrying a webhook does. Measured: the acknowledgement time of
every request (send → 200), then, once the worker has drained, what the database holds:
every accepted message id must be exactly one stored message (none lost, none twice), and
the time from a webhook's send to its message being stored. First, ``GET /healthz`` at the
same rate for ``--baseline-seconds`` shows the floor the machine gives any request.

The senders' conversations are taken over by a person beforehand, so no turn runs: this
measures the channel (verify, store the event, acknowledge; contact, conversation and message
in Celery), not the brain (``--with-turns`` lets the offline brain answer too; the replies then
go to a fake WhatsApp API in this process).

Like ``bench/chat.py``: its own database (``morvo_bench_webhooks``) on the embedded server,
var folder ``var/bench`` (logs in ``var/bench/logs``), daphne and one Celery worker started as
subprocesses, a table with targets, and ``bench/results/webhooks-<timestamp>.json``. Exit
status 0 when targets are missed (a report), 1 on errors (a process that did not start).
Targets: ack p99 ≤ 50 ms; 0 lost; 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
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
sys.modules[_spec.name] = bp
_spec.loader.exec_module(bp)

BenchError = bp.BenchError
say = bp.say
summary_ms = bp.summary_ms
HOST = bp.HOST
LOG_DIR: Path = bp.LOG_DIR

INBOX_NAME = "bench-whatsapp"
APP_SECRET = "bench-app-secret"
ACK_P99_TARGET_MS = 50.0


# --- preparation (a subprocess: ``webhooks.py --prepare``) -----------------------------------


def prepare(senders: int, with_turns: bool, api_base_url: str) -> dict[str, Any]:
    """The platform bench's preparation, then a fresh WhatsApp inbox for the bench tenant
    (the previous one, its conversations and events deleted) and one conversation per
    sender, taken over by a person unless turns are wanted."""
    prepared = bp.prepare()  # calls django.setup()

    from django.db import connection, transaction

    from conversations.models import Conversation, Inbox
    from morvo.models import Tenant

    tenant = Tenant.objects.get(slug=bp.TENANT_SLUG)
    started = time.perf_counter()
    old = Inbox.objects.all_tenants().filter(tenant=tenant, name=INBOX_NAME).first()
    if old is not None:
        Conversation.objects.all_tenants().filter(tenant=tenant, inbox=old).delete()
        old.delete()
    with transaction.atomic():
        inbox = Inbox.objects.for_tenant(tenant).create(
            tenant=tenant,
            name=INBOX_NAME,
            channel_type="whatsapp",
            config={
                "phone_number_id": "100000000000001",
                "access_token": "bench-access-token",
                "app_secret": APP_SECRET,
                "verify_token": "bench-verify",
                "api_base_url": api_base_url,
            },
        )
        handled_by = Conversation.HandledBy.AI if with_turns else Conversation.HandledBy.HUMAN
        Conversation.objects.for_tenant(tenant).bulk_create(
            [
                Conversation(
                    tenant=tenant,
                    inbox=inbox,
                    kind=Conversation.Kind.CUSTOMER,
                    external_id=sender_id(n),
                    handled_by=handled_by,
                    title=f"bench sender {n}",
                )
                for n in range(senders)
            ]
        )
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k) not in (None, "")}
    return {
        **prepared,
        "inbox_id": inbox.pk,
        "inbox_token": inbox.secret,
        "inbox_s": round(time.perf_counter() - started, 2),
        "dsn": dsn,
    }


def sender_id(n: int) -> str:
    return f"9665{n:08d}"


def run_prepare(env: dict[str, str], args: argparse.Namespace, api_base_url: str) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--prepare", "--senders", str(args.senders), "--api-base-url", api_base_url]
    if args.with_turns:
        command.append("--with-turns")
    completed = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600)
    (LOG_DIR / "webhooks-prepare.log").write_text(completed.stdout[-2000:] + completed.stderr)
    if completed.returncode != 0:
        raise BenchError(f"preparing the bench database failed; see {LOG_DIR / 'webhooks-prepare.log'}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- services ----------------------------------------------------------------------------------


def start_services(env: dict[str, str], concurrency: int) -> tuple[int, dict[str, subprocess.Popen[bytes]]]:
    return bp.start_web_and_worker(env, concurrency, "webhooks-")  # type: ignore[no-any-return]


def wait_ready(port: int, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    started = time.perf_counter()
    alive = processes["daphne"].poll
    if not bp.wait_for_http(f"http://{HOST}:{port}/healthz", 90, alive=lambda: alive() is None):
        raise BenchError(f"daphne did not answer; see {LOG_DIR / 'webhooks-daphne.log'}")
    deadline = time.monotonic() + 90
    while b"ready." not in (LOG_DIR / "webhooks-worker.log").read_bytes():
        if processes["worker"].poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the Celery worker did not start; see {LOG_DIR / 'webhooks-worker.log'}")
        time.sleep(0.1)
    say(f"daphne on port {port} and the worker ready ({time.perf_counter() - started:.1f}s)")


# --- the load ----------------------------------------------------------------------------------


def webhook_body(message_id: str, sender: str, text: str) -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "100000000000000",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "100000000000001"},
                            "contacts": [{"profile": {"name": f"عميل {sender[-3:]}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


async def load_phase(url: str, args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    import aiohttp

    total = int(args.rate * args.duration)
    plan: list[tuple[str, bytes]] = []
    for i in range(total):
        if args.duplicate_every and i % args.duplicate_every == args.duplicate_every - 1 and i >= 10:
            plan.append(plan[i - 10])  # a provider retrying an earlier webhook
            continue
        message_id = f"wamid.BENCH{run_id}{i:07d}"
        plan.append((message_id, webhook_body(message_id, sender_id(i % args.senders), f"هل المنتج {i} متوفر؟")))
    acks: list[float] = []
    lags: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    sent_wall: dict[str, float] = {}
    accepted: set[str] = set()
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm-up: open the pool's connections, not measured (a retry of nothing stores nothing).
        await asyncio.gather(*(session.get(f"http://{HOST}:{args.port}/healthz") for _ in range(8)))

        async def one(index: int, when: float) -> None:
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            lags.append(time.perf_counter() - when)
            message_id, body = plan[index]
            sent_wall.setdefault(message_id, time.time())
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=signed(body)) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                errors.append(f"{type(error).__name__}: {error}"[:200])
                return
            acks.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                accepted.add(message_id)

        began = time.perf_counter() + 0.2
        await asyncio.gather(*(one(i, began + i / args.rate) for i in range(total)))
        finished = time.perf_counter()
    return {
        "requests": total,
        "unique_message_ids": len({message_id for message_id, _ in plan}),
        "duplicate_requests": total - len({message_id for message_id, _ in plan}),
        "statuses": statuses,
        "ack": summary_ms(acks),
        "client_lag": summary_ms(lags),
        "achieved_requests_per_s": round(len(acks) / (finished - began), 1) if finished > began else 0.0,
        "errors": len(errors),
        "error_samples": errors[:10],
        "accepted_unique": sorted(accepted),
        "sent_wall": sent_wall,
        "last_send_wall": time.time(),
    }


async def baseline_phase(args: argparse.Namespace) -> dict[str, Any]:
    """``GET /healthz`` (a plain Django view, no database) at the same rate, through the same
    server and client: the floor this machine gives any request right now."""
    import aiohttp

    total = int(args.rate * args.baseline_seconds)
    times: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        url = f"http://{HOST}:{args.port}/healthz"

        async def one(when: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            times.append(time.perf_counter() - started)

        began = time.perf_counter() + 0.2
        await asyncio.gather(*(one(began + i / args.rate) for i in range(total)))
    return {"requests": total, "answer": summary_ms(times), "errors": errors}


def drain(dsn: dict[str, Any], inbox_id: int, expected: int, run_id: str, timeout: float) -> dict[str, Any]:
    """Wait until the worker has processed every event of the run (or the timeout)."""
    import psycopg

    started = time.perf_counter()
    pattern = f"wamid.BENCH{run_id}%"
    with psycopg.connect(**dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed') "
                "FROM conversations_webhookevent WHERE inbox_id = %s",
                [inbox_id],
            ).fetchone()
            assert row is not None
            stored = conn.execute(
                "SELECT count(*) FROM conversations_message m JOIN conversations_conversation c "
                "ON c.id = m.conversation_id WHERE c.inbox_id = %s AND m.role = 'user' AND m.external_id LIKE %s",
                [inbox_id, pattern],
            ).fetchone()
            assert stored is not None
            if (row[0] == 0 and stored[0] >= expected) or time.perf_counter() - started > timeout:
                break
            time.sleep(0.25)
        messages = conn.execute(
            "SELECT m.external_id, extract(epoch FROM m.created_at) FROM conversations_message m "
            "JOIN conversations_conversation c ON c.id = m.conversation_id "
            "WHERE c.inbox_id = %s AND m.role = 'user' AND m.external_id LIKE %s",
            [inbox_id, pattern],
        ).fetchall()
        events = conn.execute(
            "SELECT status, count(*) FROM conversations_webhookevent WHERE inbox_id = %s GROUP BY status", [inbox_id]
        ).fetchall()
    return {
        "waited_s": round(time.perf_counter() - started, 2),
        "messages": [(external_id, float(created)) for external_id, created in messages],
        "events": {status: count for status, count in events},
        "pending_left": row[0],
        "failed": row[1],
    }


# --- report ------------------------------------------------------------------------------------


def verdict(figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def row(metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((metric, value, target, "" if ok is None else ("ok" if ok else "MISSED")))

    load, result = figures.get("load"), figures.get("result")
    if not load or not result:
        return rows
    ack = load["ack"]
    row(
        f"webhooks sent ({figures['config']['rate']:g}/s for {figures['config']['duration_s']:g} s)",
        f"{load['requests']} ({load['duplicate_requests']} provider retries), "
        f"{load['achieved_requests_per_s']:.1f}/s achieved",
    )
    baseline = figures.get("baseline")
    if baseline:
        answer = baseline["answer"]
        row(
            "baseline GET /healthz p50 / p99",
            f"{answer['p50_ms']:.1f} / {answer['p99_ms']:.1f} ms ({baseline['errors']} errors), same rate",
        )
    row("ack p50 / p95", f"{ack['p50_ms']:.1f} / {ack['p95_ms']:.1f} ms")
    row(
        "ack p99",
        f"{ack['p99_ms']:.1f} ms (max {ack['max_ms']:.0f})",
        f"≤ {ACK_P99_TARGET_MS:.0f} ms",
        ack["p99_ms"] <= ACK_P99_TARGET_MS,
    )
    row("answers", ", ".join(f"{status}: {count}" for status, count in sorted(load["statuses"].items())))
    row("lost (accepted, no message)", str(result["lost"]), "0", result["lost"] == 0)
    row("duplicated (one id, two messages)", str(result["duplicated"]), "0", result["duplicated"] == 0)
    row("messages stored / unique ids accepted", f"{result['stored']} / {result['accepted_unique']}")
    row(
        "webhook → message stored p50 / p99",
        f"{result['stored_latency']['p50_ms']:.0f} / {result['stored_latency']['p99_ms']:.0f} ms",
    )
    row("drained after the last webhook", f"{result['drain_s']:.1f} s")
    cpu = figures.get("cpu_load_phase")
    if cpu:
        parts = ", ".join(f"{name} {value:.0f}%" for name, value in cpu.items() if name != "machine total")
        capacity = 100 * (os.cpu_count() or 1)
        row("CPU while posting (% of one core)", f"{parts}; machine {cpu['machine total']:.0f}% of {capacity}%")
    if load["client_lag"]["p99_ms"] > 20:
        row("load client lag p99", f"{load['client_lag']['p99_ms']:.0f} ms (the client fell behind)")
    return rows


def print_report(figures: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    machine, config = figures["machine"], figures["config"]
    print()
    print(
        f"Morvo webhook bench — {figures['started_at']} — {machine['cpu_count']} CPU cores, load "
        f"{machine['loadavg_at_start']} at start; WhatsApp Cloud API webhooks, {config['senders']} senders, "
        f"worker concurrency {config['worker_concurrency']}, turns {'on' if config['with_turns'] else 'off'}; DEBUG=0"
    )
    print()
    widths = [max(len(r[i]) for r in [*rows, ("metric", "value", "target", "result")]) + 3 for i in range(3)]
    print(f"{'metric':<{widths[0]}}{'value':<{widths[1]}}{'target':<{widths[2]}}result")
    for metric, value, target, result in rows:
        print(f"{metric:<{widths[0]}}{value:<{widths[1]}}{target:<{widths[2]}}{result}")


# --- orchestration -------------------------------------------------------------------------------


def measure(args: argparse.Namespace, env: dict[str, str], figures: dict[str, Any]) -> None:
    sys.path.insert(0, str(BASE_DIR))
    from morvo.runtime import embedded_db
    from tests.fake_providers import FakeProviders  # replies, when turns run, go to a fake WhatsApp API

    providers = FakeProviders()
    try:
        say(f"preparing database {args.database}: bench tenant, a WhatsApp inbox, {args.senders} senders")
        prepared = run_prepare(env, args, providers.url)
        figures["prepare"] = {k: v for k, v in prepared.items() if k not in ("token", "dsn", "inbox_token")}
        embedded_db.ensure_for_process(bp.PGDATA, args.database)
        port, processes = start_services(env, args.worker_concurrency)
        args.port = port
        try:
            wait_ready(port, processes)
            meter = bp.WorkerCpuMeter(processes["daphne"].pid, processes["worker"].pid)
            # The worker's pool processes load the router when they start: measure once they
            # (and daphne) are idle, as a server that has been up a while is.
            figures["settled_s"] = round(asyncio.run(bp.settle(meter, 60.0)), 1)
            say(f"  idle after {figures['settled_s']:.1f}s")
            url = f"http://{HOST}:{port}/webhooks/whatsapp/{prepared['inbox_token']}/"
            run_id = secrets.token_hex(3)
            if args.baseline_seconds > 0:
                say(f"baseline: GET /healthz at {args.rate:g}/s for {args.baseline_seconds:g} s")
                figures["baseline"] = asyncio.run(baseline_phase(args))
                time.sleep(2)
            say(f"posting {int(args.rate * args.duration)} webhooks at {args.rate:g}/s")
            meter.start()
            load = asyncio.run(load_phase(url, args, run_id))
            figures["cpu_load_phase"] = meter.stop()
            say(f"  ack p50 {load['ack']['p50_ms']} p99 {load['ack']['p99_ms']} ms; draining the worker")
            drained = drain(
                prepared["dsn"], prepared["inbox_id"], len(load["accepted_unique"]), run_id, args.drain_timeout
            )
        finally:
            figures["service_exit_codes"] = {
                name: bp.stop_process(process, signal.SIGTERM, grace=20) for name, process in processes.items()
            }
    finally:
        providers.close()
    stored_ids = [external_id for external_id, _ in drained["messages"]]
    accepted = set(load.pop("accepted_unique"))
    sent_wall = load.pop("sent_wall")
    stored_latency = [
        created - sent_wall[external_id] for external_id, created in drained["messages"] if external_id in sent_wall
    ]
    last_stored = max((created for _, created in drained["messages"]), default=load["last_send_wall"])
    figures["load"] = load
    figures["result"] = {
        "accepted_unique": len(accepted),
        "stored": len(stored_ids),
        "lost": len(accepted - set(stored_ids)),
        "duplicated": len(stored_ids) - len(set(stored_ids)),
        "stored_latency": summary_ms([max(0.0, value) for value in stored_latency]),
        "drain_s": round(max(0.0, last_stored - load["last_send_wall"]), 2),
        "events": drained["events"],
        "pending_left": drained["pending_left"],
        "failed_events": drained["failed"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-base-url", default="http://127.0.0.1:9", help=argparse.SUPPRESS)
    parser.add_argument("--database", default="morvo_bench_webhooks", help="database on the embedded server")
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--senders", type=int, default=200, help="distinct customers writing")
    parser.add_argument("--duplicate-every", type=int, default=20, help="one request in N repeats an earlier one")
    parser.add_argument("--connections", type=int, default=64, help="the load client's connection pool")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="longest wait for the worker afterwards")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="GET /healthz at the same rate first")
    parser.add_argument("--with-turns", action="store_true", help="let the offline brain answer every message")
    parser.add_argument("--throttle-rate", default="100000/s", help=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", help="DEBUG=1 (the default is DEBUG=0, as deployed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = bp.bench_environment(args)
    if args.prepare:
        import os

        os.environ.update(env)
        print(json.dumps(prepare(args.senders, args.with_turns, args.api_base_url), default=str))
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
            "rate": args.rate,
            "duration_s": args.duration,
            "senders": args.senders,
            "duplicate_every": args.duplicate_every,
            "connections": args.connections,
            "worker_concurrency": args.worker_concurrency,
            "with_turns": args.with_turns,
            "logs": str(LOG_DIR),
        },
    }
    failure: str | None = None
    try:
        measure(args, env, figures)
    except BenchError as error:
        failure = str(error)
    except KeyboardInterrupt:
        failure = "interrupted"
    figures["wall_s"] = round(time.perf_counter() - began, 1)
    rows = verdict(figures)
    errors = [failure] if failure else []
    exits = figures.get("service_exit_codes") or {}
    bad = {name: code for name, code in exits.items() if code not in (0, -signal.SIGTERM)}
    if bad:
        errors.append(f"bench services exited badly: {bad}")
    load = figures.get("load") or {}
    if load.get("errors"):
        errors.append(f"{load['errors']} requests failed: {load['error_samples'][:3]}")
    print_report(figures, rows)
    return bp.save_and_report(figures, rows, errors, "webhooks", stamp)  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
