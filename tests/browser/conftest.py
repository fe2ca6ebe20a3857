"""Real browser tests: Playwright driving Debian's Chromium (never ``playwright install``)
against daphne and a Celery worker working in the test database."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests import live

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

T = TypeVar("T")


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run Django code (ORM, channel-layer pushes) off the thread where Playwright's sync API
    keeps its event loop: Django refuses synchronous database work beside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(function, *args, **kwargs).result()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """daphne and one Celery worker on the test database; yields the base URL."""
    port = live.free_port()
    env = live.live_env()
    with (
        live.running(live.worker_command(), env, tmp_path / "worker.log"),
        live.running(live.daphne_command(port), env, tmp_path / "daphne.log"),
    ):
        live.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
