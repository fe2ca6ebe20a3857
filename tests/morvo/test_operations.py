from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


def test_healthz_answers_without_auth(db: Any) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_without_beat_is_503_and_names_the_failing_check() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["pgvector"].startswith("0.8")
    assert body["checks"]["heartbeat"] == {
        "ok": False,
        "error": "no heartbeat yet: are the worker and beat running?",
        "ms": body["checks"]["heartbeat"]["ms"],
    }


def _metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start + " ")]
    return values[0] if values else 0.0


def test_metrics_expose_request_latency_by_view_and_task_outcomes(two_tenants: Any) -> None:
    from morvo.tasks import echo_task

    series = 'morvo_http_request_duration_seconds_count{method="GET",status="200",view="api:me"}'
    tasks = 'morvo_celery_tasks_total{state="succeeded",task="morvo.tasks.echo_task"}'
    before = Client().get("/metrics").content.decode()
    assert two_tenants.a.api.get("/api/v1/me").status_code == 200
    assert two_tenants.a.api.get("/api/v1/me").status_code == 200
    assert echo_task.apply(args=("x",)).get() == "x"

    response = Client().get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert _metric(text, series) == _metric(before, series) + 2
    assert _metric(text, tasks) == _metric(before, tasks) + 1


def test_metrics_can_require_a_token(db: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_settings_refuse_to_start_without_secret_and_hosts_when_debug_is_off(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS")}
    env.update(
        {"DEBUG": "false", "DJANGO_SETTINGS_MODULE": "morvo.settings", "DATABASE_URL": "postgres://x@127.0.0.1:1/x"}
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "With DEBUG off, Morvo needs an explicit SECRET_KEY and ALLOWED_HOSTS." in result.stderr


def test_logs_are_json_when_debug_is_off() -> None:
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "morvo.example.com",
        "DJANGO_SETTINGS_MODULE": "morvo.settings",
        # Settings only read the URL; nothing connects in this check.
        "DATABASE_URL": "postgres://morvo@127.0.0.1:1/morvo",
    }
    code = "import django, logging; django.setup(); logging.getLogger('morvo.check').warning('سلام %s', 1)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert record["message"] == "سلام 1"
    assert record["level"] == "WARNING"
    assert record["logger"] == "morvo.check"


def test_throttle_counter_counts_per_key_and_window_and_prunes_old_windows(db: Any) -> None:
    import time

    from morvo import services
    from morvo.models import ThrottleWindow

    assert [services.throttle_hit("ip:1.2.3.4", 600, 60) for _ in range(3)] == [1, 2, 3]
    assert services.throttle_hit("ip:5.6.7.8", 600, 60) == 1
    assert services.throttle_hit("ip:1.2.3.4", 660, 60) == 1
    now = int(time.time()) // 60 * 60
    assert services.throttle_hit("ip:1.2.3.4", now, 60) == 1
    assert services.throttle_windows_prune() == 3
    assert list(ThrottleWindow.objects.values_list("key", "window_start", "hits")) == [("ip:1.2.3.4", now, 1)]


def test_delivered_broker_messages_are_pruned_and_waiting_ones_kept(transactional_db: Any) -> None:
    from django.conf import settings
    from django.db import connection
    from kombu import Connection

    from morvo import services

    name = "morvo-prune-test"
    with Connection(settings.CELERY_BROKER_URL) as broker:
        queue = broker.SimpleQueue(name)
        try:
            queue.clear()
            for number in range(3):
                queue.put({"n": number})
            taken = queue.get(timeout=5)
            taken.ack()
            assert taken.payload == {"n": 0}
            with connection.cursor() as cursor:
                # The transport keeps the delivered message, invisible; make it two hours old.
                cursor.execute(
                    "UPDATE kombu_message SET timestamp = now() - interval '2 hours' "
                    "WHERE visible = false AND queue_id = (SELECT id FROM kombu_queue WHERE name = %s)",
                    [name],
                )
                assert cursor.rowcount == 1
            # A delivered message younger than the cut-off stays (its task may still be running).
            second = queue.get(timeout=5)
            second.ack()

            assert services.broker_messages_prune() == 1
            assert services.broker_messages_prune() == 0
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT visible, count(*) FROM kombu_message WHERE queue_id = "
                    "(SELECT id FROM kombu_queue WHERE name = %s) GROUP BY visible ORDER BY visible",
                    [name],
                )
                assert cursor.fetchall() == [(False, 1), (True, 1)]
            assert queue.get(timeout=5).payload == {"n": 2}
        finally:
            queue.clear()
            queue.close()


def test_a_new_worker_child_loads_the_encoder_and_the_examples_before_its_first_turn(monkeypatch: Any) -> None:
    import threading

    from agents_app.router import offline
    from knowledge import embedders
    from morvo.celery import _warm_the_router

    # As in a freshly forked child: nothing loaded yet.
    monkeypatch.setattr(embedders, "_local", None)
    monkeypatch.setattr(offline, "_classifier", None)
    _warm_the_router()
    warming = [thread for thread in threading.enumerate() if thread.name == "morvo-router-warm-up"]
    assert warming
    for thread in warming:
        thread.join(timeout=60)
    assert embedders._local is not None
    assert offline._classifier is not None
