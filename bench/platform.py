"""Platform benchmark: ``make bench`` (``.venv/bin/python bench/platform.py``).

Measures, in one run, on the embedded profile of this machine:

1. ``make run`` start-up (first, while nothing else of the bench runs): the supervisor is
   started, timed until ``/healthz`` answers 200, then stopped with SIGINT;
2. HTTP: 16 keep-alive clients against ``/healthz`` (a plain Django JSON view), then the DRF
   endpoint ``/api/v1/me`` (token auth, tenant permission, throttles), then ``/healthz``
   again (drift); requests/s, p50/p95 and errors, with the CPU each party used;
3. Celery round trip (``echo_task.delay(i).get()``) through the SQL broker;
4. websockets: 200 concurrent sockets on ``/ws/ping/``, connect time and ping→pong;
5. SQL queries per request of ``/api/v1/me`` and ``/healthz`` (in-process check).

Everything runs in its own database (``morvo_bench``) on the embedded server and its own
var folder (``var/bench``: secret key, demo password, Prometheus files), so a ``make run`` or
a test run of the main database is not disturbed. Throttles stay enabled with rates the load
cannot reach, so their cost is measured. Prints a table with PASS/FAIL per target and writes
``bench/results/platform-<timestamp>.json``. The exit status is 0 when targets are missed
(this is a report) and non-zero on errors (a non-200 answer, a lost task, a refused socket…).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
BENCH_VAR_DIR = BASE_DIR / "var" / "bench"
LOG_DIR = BENCH_VAR_DIR / "logs"
TOKEN_FILE = BENCH_VAR_DIR / "bench_token"
PGDATA = Path(os.environ.get("MORVO_EMBEDDED_PGDATA", BASE_DIR / "var" / "pgdata")).resolve()

BENCH_DATABASE = "morvo_bench"
TENANT_SLUG = "bench"
OWNER_EMAIL = "bench-owner@example.com"
HOST = "127.0.0.1"

# Targets.
API_RATIO_TARGET = 0.50
CELERY_P95_TARGET_MS = 250.0
WS_PING_P95_TARGET_MS = 50.0
STARTUP_TARGET_S = 20.0

# Run as a script, this file's folder comes first on sys.path, where this module (named like
# the standard library's ``platform``) would shadow it for Django, Celery and the rest. Only
# standard modules that do not import ``platform`` are imported above this line.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]


class BenchError(Exception):
    """Something did not work (as opposed to a target being missed)."""


# --- environment ---------------------------------------------------------------------------


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment of this process and of every process it starts."""
    env = dict(os.environ)
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings",
            # Empty values win over a .env file (read with overwrite=False): embedded profile.
            "DATABASE_URL": "",
            "MORVO_REDIS_URL": "",
            "MORVO_DATABASE_NAME": args.database,
            "MORVO_VAR_DIR": str(BENCH_VAR_DIR),
            "MORVO_EMBEDDED_PGDATA": str(PGDATA),
            "PROMETHEUS_MULTIPROC_DIR": str(BENCH_VAR_DIR / "prometheus"),
            "API_THROTTLE_TOKEN_RATE": args.throttle_rate,
            "API_THROTTLE_IP_RATE": args.throttle_rate,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not args.debug:
        env.update(
            {
                "DEBUG": "0",
                "SECRET_KEY": env.get("SECRET_KEY") or "bench-" + "x" * 50,
                "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            }
        )
    return env


# --- small helpers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else math.nan,
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else math.nan,
    }


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def http_get(url: str, timeout: float = 1.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return int(response.status)


def wait_for_http(url: str, timeout: float, poll: float = 0.1, alive: Callable[[], bool] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            if http_get(url) == 200:
                return True
        except OSError:
            pass
        time.sleep(poll)
    return False


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 20.0) -> int:
    """Signal, wait, kill if needed; returns the exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            say(f"pid {process.pid} did not stop in {grace:.0f}s; killing it")
            process.kill()
            process.wait()
    return int(process.returncode)


# --- CPU accounting (Linux /proc) ----------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it is in parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int, include_children: bool = False) -> float:
    fields = _proc_stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if include_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """The embedded server: the postmaster (with its reaped children) and its live backends."""
    try:
        postmaster = int((PGDATA / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = process_cpu_seconds(postmaster, include_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[1] == str(postmaster):
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU used by each party between start() and stop(), as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def _sample(self) -> dict[str, float]:
        sample = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["bench client"] = time.process_time()
        sample["postgres"] = postgres_cpu_seconds()
        busy, total = machine_busy_seconds()
        sample["_busy"], sample["_total"] = busy, total
        sample["_wall"] = time.perf_counter()
        return sample

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        wall = after["_wall"] - self.before["_wall"]
        result = {
            name: round(100 * (after[name] - self.before[name]) / wall, 1) for name in after if not name.startswith("_")
        }
        total = after["_total"] - self.before["_total"]
        # Whole machine, all processes (other users included), as % of ONE core.
        cores = os.cpu_count() or 1
        result["machine total"] = round(100 * cores * (after["_busy"] - self.before["_busy"]) / total, 1)
        return result


def tree_cpu_seconds(pid: int) -> float:
    """A process, its reaped children and its live children (the worker's pool processes)."""
    total = process_cpu_seconds(pid, include_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return total


class WorkerCpuMeter(CpuMeter):
    """The platform bench's meter, with the worker counted with its pool processes (the
    prefork children run the tasks; the main process only dispatches)."""

    def __init__(self, daphne: int, worker: int) -> None:
        super().__init__({"daphne": daphne})
        self.worker = worker

    def _sample(self) -> dict[str, float]:
        sample: dict[str, float] = super()._sample()
        sample["worker (all processes)"] = tree_cpu_seconds(self.worker)
        return sample


async def settle(meter: WorkerCpuMeter, timeout: float) -> float:
    """Wait until daphne and the worker use < 10% of a core over a second; seconds waited."""
    started = time.perf_counter()
    pids = (meter.pids["daphne"], meter.worker)
    before = sum(tree_cpu_seconds(pid) for pid in pids)
    while time.perf_counter() - started < timeout:
        await asyncio.sleep(1.0)
        after = sum(tree_cpu_seconds(pid) for pid in pids)
        if after - before < 0.10:
            break
        before = after
    return time.perf_counter() - started


# --- preparation (run in a subprocess: ``platform.py --prepare``) ----------------------------


def purge_broker() -> int:
    """Drop tasks an earlier run left queued (its workers stopped with a backlog): a new run
    must not spend its time on them. Returns how many were dropped."""
    from morvo.celery import app

    return int(app.control.purge() or 0)


def prepare() -> dict[str, Any]:
    """Migrate the bench database, seed the demo tenant (so ``make run`` is measured warm),
    make sure the bench tenant and owner exist, and return a working API token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from crm.demo_data import seed_demo
    from morvo import selectors
    from morvo.models import Tenant
    from morvo.services import api_token_issue, tenant_create_with_owner

    timings: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    timings["migrate_s"] = round(time.perf_counter() - started, 2)
    timings["stale_tasks_purged"] = purge_broker()
    started = time.perf_counter()
    seed_demo()
    timings["seed_demo_s"] = round(time.perf_counter() - started, 2)

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    if tenant is None:
        tenant, _password = tenant_create_with_owner(slug=TENANT_SLUG, owner_email=OWNER_EMAIL, name="Bench")
    user = get_user_model().objects.get(email__iexact=OWNER_EMAIL)

    key = TOKEN_FILE.read_text().strip() if TOKEN_FILE.exists() else ""
    found = selectors.api_token_by_key(key) if key else None
    if found is None or found[0].tenant_id != tenant.pk:
        _token, key = api_token_issue(user=user, tenant=tenant, name="bench")
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        TOKEN_FILE.write_text(key)
        TOKEN_FILE.chmod(0o600)
    return {"token": key, "tenant": tenant.slug, **timings}


def run_prepare(env: dict[str, str]) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, __file__, "--prepare"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    (LOG_DIR / "prepare.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise BenchError(f"preparing the bench database failed; see {LOG_DIR / 'prepare.log'}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- 1. make run start-up ------------------------------------------------------------------


def measure_startup(env: dict[str, str]) -> dict[str, Any]:
    from morvo.runtime import embedded_db

    port = free_port()
    db_was_running = embedded_db.running_server(PGDATA) is not None
    log_path = LOG_DIR / "supervisor.log"
    banner: dict[str, float] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "morvo.runtime.supervisor"],
        cwd=BASE_DIR,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our SIGINT reaches only the supervisor, as Ctrl-C would
    )

    def pump() -> None:
        assert process.stdout is not None
        with open(log_path, "wb") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if b"Morvo is running (" in line and "banner_s" not in banner:
                    banner["banner_s"] = time.perf_counter() - started
                    text = line.decode(errors="replace")
                    banner["reported_s"] = float(text.split("(", 1)[1].split("s)", 1)[0])

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    result: dict[str, Any] = {"port": port, "database_server_was_running": db_was_running}
    try:
        serving = wait_for_http(f"http://{HOST}:{port}/healthz", timeout=90, alive=lambda: process.poll() is None)
        serving_s = time.perf_counter() - started
        result["serving"] = serving
        result["serving_s"] = round(serving_s, 2) if serving else None
        if serving:
            # The banner follows /healthz by at most one poll of the supervisor.
            deadline = time.monotonic() + 5
            while "banner_s" not in banner and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # let the worker and beat finish booting, as a user would
    finally:
        stop_started = time.perf_counter()
        exit_code = stop_process(process, signal.SIGINT, grace=60)
        result["shutdown_s"] = round(time.perf_counter() - stop_started, 2)
        result["exit_code"] = exit_code
        reader.join(timeout=5)
    result["banner_s"] = round(banner["banner_s"], 2) if "banner_s" in banner else None
    result["banner_reported_s"] = banner.get("reported_s")
    return result


# --- 2. HTTP load ----------------------------------------------------------------------------


@dataclass
class HttpRun:
    path: str
    duration_s: float
    requests: int = 0
    errors: int = 0
    reconnects: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "rps": round(self.requests / self.duration_s, 1),
            **{k: v for k, v in summary_ms(self.latencies).items() if k != "n"},
            "errors": self.errors,
            "statuses": self.statuses,
            "reconnects": self.reconnects,
            "error_samples": self.error_samples[:5],
            "cpu_percent_of_one_core": self.cpu,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns (status, server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    keep = headers.get("connection", "").lower() != "close" and lines[0].startswith("HTTP/1.1")
    return status, keep


async def _http_client(
    port: int, request: bytes, run: HttpRun, warm_until: float, stop_at: float, timeout: float
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        begun = time.perf_counter()
        if begun >= stop_at:
            break
        measured = begun >= warm_until
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
                if measured:
                    run.reconnects += 1
            assert reader is not None
            writer.write(request)
            status, keep = await asyncio.wait_for(_read_response(reader), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as error:
            if measured:
                run.errors += 1
                run.error_samples.append(f"{type(error).__name__}: {error}")
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
            continue
        if measured:
            run.requests += 1
            run.latencies.append(time.perf_counter() - begun)
            run.statuses[str(status)] = run.statuses.get(str(status), 0) + 1
            if status != 200:
                run.errors += 1
                if len(run.error_samples) < 5:
                    run.error_samples.append(f"HTTP {status}")
        if not keep:
            assert writer is not None
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def http_load(
    port: int, path: str, headers: dict[str, str], clients: int, warmup: float, duration: float, meter: CpuMeter
) -> HttpRun:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: keep-alive\r\n{extra}\r\n".encode()
    run = HttpRun(path=path, duration_s=duration)
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + duration

    async def meter_window() -> None:
        await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
        meter.start()
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        run.cpu = meter.stop()

    await asyncio.gather(
        meter_window(), *(_http_client(port, request, run, warm_until, stop_at, 10.0) for _ in range(clients))
    )
    return run


# --- 3. Celery round trip --------------------------------------------------------------------


def celery_round_trips(count: int, warmup: int) -> dict[str, Any]:
    from django.conf import settings

    from morvo.broker import PostgresPollingTransport
    from morvo.celery import app
    from morvo.tasks import echo_task

    latencies: list[float] = []
    errors: list[str] = []
    for i in range(-warmup, count):
        started = time.perf_counter()
        try:
            value = echo_task.delay(i).get(timeout=10, interval=0.005)
        except Exception as error:  # every failure is reported, none is fatal here
            errors.append(f"{type(error).__name__}: {error}")
            continue
        elapsed = time.perf_counter() - started
        if value != i:
            errors.append(f"echo_task({i}) returned {value!r}")
        elif i >= 0:
            latencies.append(elapsed)
    transport = str(app.conf.broker_url).split("+", 1)[0].split(":", 1)[0]
    return {
        **summary_ms(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "broker": transport,
        "broker_polling_interval_s": PostgresPollingTransport.polling_interval if transport == "morvosql" else None,
        "result_poll_interval_s": 0.005,
        "worker_prefetch_multiplier": getattr(settings, "CELERY_WORKER_PREFETCH_MULTIPLIER", None),
    }


# --- 4. websockets -----------------------------------------------------------------------------


async def websocket_bench(
    port: int, token: str, sockets: int, rounds: int, settle: float = 1.0, spread_seconds: int = 3
) -> dict[str, Any]:
    import websockets
    from websockets.asyncio.client import connect

    url = f"ws://{HOST}:{port}/ws/ping/?token={token}"
    connect_times: list[float] = []
    errors: list[str] = []

    async def open_one() -> Any:
        started = time.perf_counter()
        try:
            ws = await connect(url, open_timeout=30, ping_interval=None, max_queue=None)
        except (OSError, TimeoutError, websockets.WebSocketException) as error:
            errors.append(f"connect: {type(error).__name__}: {error}")
            return None
        connect_times.append(time.perf_counter() - started)
        return ws

    started = time.perf_counter()
    opened = await asyncio.gather(*(open_one() for _ in range(sockets)))
    all_open_s = time.perf_counter() - started
    live = [ws for ws in opened if ws is not None]
    await asyncio.sleep(settle)

    ping_times: list[float] = []
    per_round: list[dict[str, float]] = []

    legs: dict[str, list[float]] = {"to_server": [], "from_server": []}

    async def ping(ws: Any, ident: int, measured: bool) -> float | None:
        sent_at = time.time()
        started = time.perf_counter()
        try:
            await ws.send(json.dumps({"type": "ping", "id": ident}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (TimeoutError, websockets.WebSocketException, ValueError) as error:
            errors.append(f"ping: {type(error).__name__}: {error}")
            return None
        elapsed = time.perf_counter() - started
        if answer.get("type") != "pong" or answer.get("id") != ident or answer.get("tenant") != TENANT_SLUG:
            errors.append(f"ping: unexpected answer {answer!r}"[:200])
            return None
        if measured and answer.get("server_time"):
            # Same machine, same clock: split the round trip at the moment the pong was built.
            at_server = datetime.fromisoformat(answer["server_time"]).timestamp()
            legs["to_server"].append(max(0.0, at_server - sent_at))
            legs["from_server"].append(max(0.0, elapsed - (at_server - sent_at)))
        return elapsed

    # Let the server finish what follows the handshakes (group membership, the channel
    # layer's per-channel advisory locks) before pinging. Round 0 is a warm-up (first frame
    # on each socket); rounds 1..n are measured: all sockets ping at the same instant.
    for round_number in range(rounds + 1):
        results = await asyncio.gather(
            *(ping(ws, round_number * 100000 + n, round_number > 0) for n, ws in enumerate(live))
        )
        times = [t for t in results if t is not None]
        if round_number > 0:
            ping_times.extend(times)
        per_round.append(
            {"p50_ms": round(percentile(times, 50) * 1000, 2), "p95_ms": round(percentile(times, 95) * 1000, 2)}
        )
        await asyncio.sleep(0.2)

    # Then the same sockets pinging once a second each, spread evenly over the second
    # (200 sockets: 200 pings/s): the latency of one ping when they do not all arrive at once.
    spread: list[float] = []
    spread_base = time.perf_counter() + 0.1

    async def paced(ws: Any, n: int) -> None:
        for k in range(spread_seconds):
            await asyncio.sleep(max(0.0, spread_base + k + n / len(live) - time.perf_counter()))
            elapsed = await ping(ws, 10_000_000 + k * 100000 + n, False)
            if elapsed is not None:
                spread.append(elapsed)

    await asyncio.gather(*(paced(ws, n) for n, ws in enumerate(live)))
    await asyncio.gather(*(ws.close() for ws in live), return_exceptions=True)
    return {
        "sockets_requested": sockets,
        "sockets_open": len(live),
        "all_open_s": round(all_open_s, 2),
        "connect": summary_ms(connect_times),
        "ping_rounds": rounds,
        "ping": summary_ms(ping_times),
        "ping_to_server": summary_ms(legs["to_server"]),
        "ping_from_server": summary_ms(legs["from_server"]),
        "ping_per_round": per_round,
        "ping_spread": {
            "pings_per_s": len(live),
            "seconds": spread_seconds,
            **summary_ms(spread),
        },  # [0] is the unmeasured warm-up round
        "errors": len(errors),
        "error_samples": errors[:5],
    }


# --- 5. SQL queries per request --------------------------------------------------------------


def queries_per_request(token: str) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    result: dict[str, Any] = {}
    for name, path, headers in (
        ("healthz", "/healthz", {}),
        ("api_me", "/api/v1/me", {"HTTP_AUTHORIZATION": f"Token {token}"}),
    ):
        client.get(path, **headers)  # first call: last_used_at, lazy imports…
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **headers)
        if response.status_code != 200:
            raise BenchError(f"in-process GET {path} answered {response.status_code}")
        result[name] = {"count": len(captured), "sql": [query["sql"][:160] for query in captured.captured_queries]}
    return result


# --- orchestration ---------------------------------------------------------------------------


def start_web_and_worker(
    env: dict[str, str], concurrency: int, label: str = ""
) -> tuple[int, dict[str, subprocess.Popen[bytes]]]:
    """daphne on a free port and one Celery worker, as ``make run`` starts them; their output
    goes to ``LOG_DIR/<label>daphne.log`` and ``<label>worker.log``. Used by every bench."""
    port = free_port()
    python = sys.executable
    worker_options = ["--concurrency", str(concurrency), "--hostname", f"bench-{label}{os.getpid()}@%h"]
    commands = {
        "daphne": [python, "-m", "morvo.runtime.web", "-b", HOST, "-p", str(port), "morvo.asgi:application"],
        "worker": [python, "-m", "celery", "-A", "morvo", "worker", "--loglevel", "INFO", *worker_options],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in commands.items():
        with open(LOG_DIR / f"{label}{name}.log", "wb") as log:
            processes[name] = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    return port, processes


def start_services(env: dict[str, str]) -> dict[str, Any]:
    port, processes = start_web_and_worker(env, 2)
    return {"port": port, "processes": processes}


def measure_services(args: argparse.Namespace, token: str, figures: dict[str, Any]) -> None:
    import gc

    import django

    django.setup()
    # Django, Celery and friends are loaded and will stay: keep the collector from walking
    # them in the middle of a measurement (the load client runs in this process).
    gc.freeze()
    services = start_services(os.environ.copy())
    port: int = services["port"]
    processes: dict[str, subprocess.Popen[bytes]] = services["processes"]
    try:
        started = time.perf_counter()
        if not wait_for_http(f"http://{HOST}:{port}/healthz", 90, alive=lambda: processes["daphne"].poll() is None):
            raise BenchError(f"daphne did not answer; see {LOG_DIR / 'daphne.log'}")
        say(f"daphne serving on port {port} ({time.perf_counter() - started:.1f}s)")

        from morvo.tasks import echo_task

        started = time.perf_counter()
        try:
            echo_task.delay("ready").get(timeout=90, interval=0.05)
        except Exception as error:
            raise BenchError(f"the Celery worker did not answer ({error}); see {LOG_DIR / 'worker.log'}") from error
        say(f"celery worker answering ({time.perf_counter() - started:.1f}s)")

        meter = CpuMeter({"daphne": processes["daphne"].pid, "worker": processes["worker"].pid})
        auth = {"Authorization": f"Token {token}"}
        http: list[dict[str, Any]] = []
        for label, path, headers in (
            ("plain view /healthz (1)", "/healthz", {}),
            ("DRF /api/v1/me", "/api/v1/me", auth),
            ("plain view /healthz (2)", "/healthz", {}),
        ):
            say(f"HTTP {label}: {args.clients} clients, {args.warmup:g}s warm-up + {args.duration:g}s")
            run = asyncio.run(http_load(port, path, headers, args.clients, args.warmup, args.duration, meter))
            http.append({"label": label, **run.figures()})
            say(
                f"  {run.requests / run.duration_s:.0f} req/s, p50 {percentile(run.latencies, 50) * 1000:.1f} ms, "
                f"p95 {percentile(run.latencies, 95) * 1000:.1f} ms, errors {run.errors}; CPU {run.cpu}"
            )
        figures["http"] = http

        say(f"Celery: {args.tasks} sequential echo_task round trips")
        figures["celery"] = celery_round_trips(args.tasks, warmup=10)
        say(f"  {figures['celery']}")

        say(f"websockets: {args.sockets} concurrent sockets, {args.ping_rounds} ping rounds")
        figures["websockets"] = asyncio.run(websocket_bench(port, token, args.sockets, args.ping_rounds))
        say(f"  connect {figures['websockets']['connect']}, ping {figures['websockets']['ping']}")

        figures["sql_queries_per_request"] = queries_per_request(token)
        say(
            "SQL queries per request: "
            + ", ".join(f"{k} {v['count']}" for k, v in figures["sql_queries_per_request"].items())
        )
    finally:
        exits = {}
        for name, process in processes.items():
            exits[name] = stop_process(process, signal.SIGTERM, grace=20)
        figures["service_exit_codes"] = exits
        from django.db import connections

        connections.close_all()


def machine_info() -> dict[str, Any]:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": [float(v) for v in load],
        "python": sys.version.split()[0],
        "hostname": socket.gethostname(),
    }


def verdicts(figures: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Table rows (metric, value, target, result) and the list of errors."""
    rows: list[tuple[str, str, str, str]] = []
    errors: list[str] = []

    def row(metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((metric, value, target, "" if ok is None else ("PASS" if ok else "FAIL")))

    startup = figures.get("startup")
    if startup:
        serving = startup.get("serving_s")
        row(
            "make run: /healthz answers",
            f"{serving:.1f} s" if serving is not None else "never",
            f"≤ {STARTUP_TARGET_S:.0f} s",
            serving is not None and serving <= STARTUP_TARGET_S,
        )
        if startup.get("banner_reported_s") is not None:
            row("make run: banner says", f"{startup['banner_reported_s']:.1f} s")
        row("make run: db server already up", "yes" if startup["database_server_was_running"] else "no (cold)")
        row(
            "make run: SIGINT → exit",
            f"{startup['shutdown_s']:.1f} s, exit {startup['exit_code']}",
            "exit 0",
            startup["exit_code"] == 0,
        )
        if not startup.get("serving"):
            errors.append("make run never answered /healthz")
        if startup["exit_code"] != 0:
            errors.append(f"make run exited {startup['exit_code']} on SIGINT")

    http = figures.get("http")
    if http:
        base1, api, base2 = http
        baseline = (base1["rps"] + base2["rps"]) / 2
        ratio = api["rps"] / baseline if baseline else 0.0
        for run in http:
            row(
                f"http {run['label']}",
                f"{run['rps']:.0f} req/s p50 {run['p50_ms']:.1f} p95 {run['p95_ms']:.1f} ms err {run['errors']}",
            )
        row(
            "api /me throughput vs plain view",
            f"{ratio:.0%} ({api['rps']:.0f}/{baseline:.0f})",
            f"≥ {API_RATIO_TARGET:.0%}",
            ratio >= API_RATIO_TARGET,
        )
        row("plain view drift (run 2 vs 1)", f"{(base2['rps'] / base1['rps'] - 1) if base1['rps'] else 0:+.0%}")
        for run in http:
            if run["errors"]:
                errors.append(f"{run['errors']} errors on {run['path']}: {run['error_samples']}")
            if run["requests"] == 0:
                errors.append(f"no request completed on {run['path']}")

    celery = figures.get("celery")
    if celery:
        row(
            "celery round trip p95",
            f"{celery['p95_ms']:.1f} ms (p50 {celery['p50_ms']:.1f}, max {celery['max_ms']:.1f})",
            f"≤ {CELERY_P95_TARGET_MS:.0f} ms",
            celery["p95_ms"] <= CELERY_P95_TARGET_MS,
        )
        row("celery broker polling interval", f"{celery['broker_polling_interval_s']} s")
        if celery["errors"]:
            errors.append(f"{celery['errors']} Celery round trips failed: {celery['error_samples']}")

    ws = figures.get("websockets")
    if ws:
        row(
            f"ws ping p95, burst ({ws['sockets_open']} sockets)",
            f"{ws['ping']['p95_ms']:.1f} ms (p50 {ws['ping']['p50_ms']:.1f})",
            f"≤ {WS_PING_P95_TARGET_MS:.0f} ms",
            ws["ping"]["p95_ms"] <= WS_PING_P95_TARGET_MS,
        )
        row(
            f"ws ping p95, {ws['ping_spread']['pings_per_s']} pings/s spread",
            f"{ws['ping_spread']['p95_ms']:.1f} ms (p50 {ws['ping_spread']['p50_ms']:.1f})",
        )
        row(
            "ws ping burst: to-server leg p95",
            f"{ws['ping_to_server']['p95_ms']:.1f} ms (from-server {ws['ping_from_server']['p95_ms']:.1f})",
        )
        row(
            "ws connect p50 / p95",
            f"{ws['connect']['p50_ms']:.0f} / {ws['connect']['p95_ms']:.0f} ms (all in {ws['all_open_s']:.1f} s)",
        )
        if ws["errors"] or ws["sockets_open"] < ws["sockets_requested"]:
            errors.append(f"websockets: {ws['errors']} errors: {ws['error_samples']}")

    sql = figures.get("sql_queries_per_request")
    if sql:
        row("SQL queries per request", f"/me {sql['api_me']['count']}, /healthz {sql['healthz']['count']}")
    exits = figures.get("service_exit_codes") or {}
    bad = {name: code for name, code in exits.items() if code not in (0, -signal.SIGTERM)}
    if bad:
        errors.append(f"bench services exited badly: {bad}")
    return rows, errors


def print_report(figures: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    machine = figures["machine"]
    print()
    print(
        f"Morvo platform bench — {figures['started_at']} — {machine['cpu_count']} CPU cores, "
        f"load {machine['loadavg_at_start']} at start; DEBUG={figures['config']['debug']}"
    )
    print(
        "Client, server, worker and PostgreSQL share these cores: HTTP figures are for the whole box, "
        "and the CPU split below shows who used it."
    )
    http = figures.get("http") or []
    if http:
        print()
        parties = list(http[0]["cpu_percent_of_one_core"])
        print(f"{'CPU % of one core':<26}" + "".join(f"{name[:22]:>24}" for name in parties))
        for run in http:
            cpu = run["cpu_percent_of_one_core"]
            print(f"{run['label'][:26]:<26}" + "".join(f"{cpu.get(name, 0):>24.0f}" for name in parties))
        client = max(run["cpu_percent_of_one_core"].get("bench client", 0) for run in http)
        daphne = max(run["cpu_percent_of_one_core"].get("daphne", 0) for run in http)
        verdict = (
            "the client may be a bottleneck"
            if client >= 85
            else "the client is not the bottleneck" + (" (daphne's event loop is saturated)" if daphne >= 85 else "")
        )
        print(f"Load client peak {client:.0f}% of a core, daphne peak {daphne:.0f}%: {verdict}.")
    print()
    widths = [max(len(r[i]) for r in [*rows, ("metric", "value", "target", "result")]) + 3 for i in range(3)]
    print(f"{'metric':<{widths[0]}}{'value':<{widths[1]}}{'target':<{widths[2]}}result")
    for metric, value, target, result in rows:
        print(f"{metric:<{widths[0]}}{value:<{widths[1]}}{target:<{widths[2]}}{result}")
    sql = figures.get("sql_queries_per_request")
    if sql:
        print()
        print(f"SQL of one /api/v1/me request ({sql['api_me']['count']} queries):")
        for query in sql["api_me"]["sql"]:
            print(f"  {query}")


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database", default=BENCH_DATABASE, help="database on the embedded server")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each run")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per HTTP run")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--ping-rounds", type=int, default=5)
    parser.add_argument(
        "--throttle-rate",
        default="100000/s",
        help="API throttle rates during the bench (high, so the load is not refused; per-second so "
        "DRF's timestamp history stays as short as under the default 600/min)",
    )
    parser.add_argument("--debug", action="store_true", help="run with DEBUG=1 (default: DEBUG=0, as deployed)")
    parser.add_argument("--skip-startup", action="store_true", help="do not measure make run start-up")
    return parser.parse_args(list(argv) if argv is not None else None)


def save_and_report(figures: dict[str, Any], rows: list[Any], errors: list[str], name: str, stamp: str) -> int:
    """The end of every bench: the table and the errors into ``figures``, the figures to
    ``bench/results/<name>-<stamp>.json``, where they are and the errors on stdout. Returns
    the exit status (1 on errors)."""
    figures["table"] = [dict(zip(("metric", "value", "target", "result"), r, strict=True)) for r in rows]
    figures["errors"] = errors
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}-{stamp}.json"
    out.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str) + "\n")
    print()
    print(f"Figures: {out.relative_to(BASE_DIR)} (logs in {LOG_DIR.relative_to(BASE_DIR)}); {figures['wall_s']}s")
    if errors:
        print("ERRORS:")
        for error in errors:
            print(f"  - {error}")
        return 1
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    env = bench_environment(args)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(BASE_DIR)

    if args.prepare:
        print(json.dumps(prepare()), flush=True)
        return 0

    BENCH_VAR_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    figures: dict[str, Any] = {
        "started_at": stamp,
        "machine": machine_info(),
        "config": {
            "database": args.database,
            "clients": args.clients,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "tasks": args.tasks,
            "sockets": args.sockets,
            "ping_rounds": args.ping_rounds,
            "throttle_rate": args.throttle_rate,
            "debug": args.debug,
            "logs": str(LOG_DIR),
        },
    }
    failure: str | None = None
    try:
        say(f"preparing database {args.database} (migrate, demo seed, bench tenant and token)")
        prepared = run_prepare(env)
        figures["prepare"] = {k: v for k, v in prepared.items() if k != "token"}
        if not args.skip_startup:
            say("make run start-up (python -m morvo.runtime.supervisor), then SIGINT")
            figures["startup"] = measure_startup(env)
            say(f"  {figures['startup']}")
        measure_services(args, prepared["token"], figures)
    except BenchError as error:
        failure = str(error)
    except KeyboardInterrupt:
        failure = "interrupted"
    figures["wall_s"] = round(time.perf_counter() - began, 1)

    rows, errors = verdicts(figures)
    if failure:
        errors.insert(0, failure)
    print_report(figures, rows)
    return save_and_report(figures, rows, errors, "platform", stamp)


if __name__ == "__main__":
    sys.exit(main())
