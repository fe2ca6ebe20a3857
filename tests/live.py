"""Real processes for live tests: daphne, a Celery worker and beat, working in the test
database (``MORVO_USE_TEST_DATABASE=1``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def live_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings_test",
            "MORVO_USE_TEST_DATABASE": "1",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def wait_until(predicate, timeout: float, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def daphne_command(port: int) -> list[str]:
    return [sys.executable, "-m", "morvo.runtime.web", "-b", "127.0.0.1", "-p", str(port), "morvo.asgi:application"]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "morvo", "worker", "-l", "INFO", "-c", "1", "--without-mingle",
            "--without-gossip", "--hostname", f"test-{os.getpid()}@%h"]  # fmt: skip


def beat_command(schedule_file: Path) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "morvo", "beat", "-l", "INFO", "--schedule", str(schedule_file)]
