"""``make run``: one command that brings Morvo up and, on Ctrl-C, down again.

1. the embedded PostgreSQL (unless ``DATABASE_URL`` is set), registered as in use by this process;
2. migrations and the demo tenant (``seed_demo`` is idempotent);
3. daphne (web + websockets) on 127.0.0.1:$PORT, one Celery worker and one beat;
4. prints where to go and how to sign in.

Ctrl-C (or SIGTERM) stops the three processes gracefully, then the database. If one of
them dies, the others are stopped too and the exit status is non-zero.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent.parent
GRACE_SECONDS = 15


def _print(message: str) -> None:
    print(f"[morvo] {message}", flush=True)


def _prepare() -> tuple[str, str | None]:
    """Migrate and seed in this process; returns (demo e-mail, demo password)."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    # Counters from a previous run would be summed into this one's.
    shutil.rmtree(settings.PROMETHEUS_MULTIPROC_DIR, ignore_errors=True)
    Path(settings.PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    _print(f"database ready ({time.perf_counter() - started:.1f}s)")
    from crm.demo_data import demo_extras_seed, seed_demo

    result = seed_demo()
    _print(("seeded the demo tenant" if result.created else "demo tenant already seeded") + f" ({result.tenant.slug})")
    started = time.perf_counter()
    demo_extras_seed(result.tenant)
    _print(f"demo knowledge and campaigns ready ({time.perf_counter() - started:.1f}s)")
    from django.db import connections

    connections.close_all()
    return result.owner_email, result.password


def _wait_until_serving(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    began = time.perf_counter()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morvo.settings")
    port = int(os.environ.get("PORT", "8000"))
    host = "127.0.0.1"
    os.chdir(BASE_DIR)

    email, password = _prepare()

    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "morvo.runtime.web",
            "-b",
            host,
            "-p",
            str(port),
            "--proxy-headers",
            "morvo.asgi:application",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "morvo",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("CELERY_CONCURRENCY", "2"),
            "--hostname",
            f"morvo@{os.uname().nodename}",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "morvo",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(BASE_DIR / "var" / "celerybeat-schedule"),
        ],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop_all(signum: int | None = None, frame: FrameType | None = None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        _print("stopping web, worker and beat…")
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    for name, command in commands.items():
        # A session of their own: the terminal's Ctrl-C reaches only this supervisor,
        # which shuts them down in order (a second SIGINT would make Celery cold-stop).
        processes[name] = subprocess.Popen(command, start_new_session=True)

    if _wait_until_serving(port) and not stopping:
        base = f"http://{host}:{port}"
        elapsed = time.perf_counter() - began
        lines = [
            "",
            f"Morvo is running ({elapsed:.1f}s). Ctrl-C stops everything.",
            f"  Companion chat:     {base}/app/chat/",
            f"  Back office:        {base}/admin/",
            f"  API docs:           {base}/api/docs/",
            f"  Health:             {base}/readyz",
            f"  Sign in as:         {email}",
            f"  Password:           {password or '(unchanged; see var/demo_owner_password)'}",
            "  API token:          .venv/bin/python manage.py issue_api_token demo " + email,
            "",
        ]
        print("\n".join(lines), flush=True)
    elif not stopping:
        _print(f"the web server did not answer on port {port}")
        stop_all()

    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                _print(f"{name} exited with status {process.returncode}; stopping the rest")
                exit_code = 1
                stop_all()
                break
        time.sleep(0.5)

    deadline = time.monotonic() + GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _print(f"{name} did not stop in {GRACE_SECONDS}s; killing it")
            process.kill()
            process.wait()
    _print("stopped; the database stops with this process")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
