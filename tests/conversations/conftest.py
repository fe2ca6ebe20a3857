"""Fixtures of the channel tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests import fake_providers as fp


@pytest.fixture
def providers() -> Any:
    """The fake provider APIs on 127.0.0.1 (``tests/fake_providers.py``)."""
    server = fp.FakeProviders()
    yield server
    server.close()


@pytest.fixture
def eager() -> Any:
    """Celery tasks run at once, in the test's thread."""
    from morvo.celery import app as celery_app

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def quiet_realtime(monkeypatch: Any) -> None:
    """No socket pushes (nobody listens in these tests)."""
    for name in ("push_message", "push_inbox", "push_status", "push_typing"):
        monkeypatch.setattr(f"conversations.realtime.{name}", lambda *args: None)
