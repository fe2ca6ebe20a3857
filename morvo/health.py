"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from morvo import selectors


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "the vector extension is missing"}
    return {"ok": True, "pgvector": row[0]}


def _check_broker() -> dict[str, Any]:
    from morvo.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        # A real round trip to the broker (the SQL transport connects lazily).
        declared = conn.default_channel.queue_declare(queue=app.conf.task_default_queue, passive=True)
    return {"ok": True, "queued": declared.message_count}


def _check_heartbeat() -> dict[str, Any]:
    age = selectors.heartbeat_age("beat")
    if age is None:
        return {"ok": False, "error": "no heartbeat yet: are the worker and beat running?"}
    seconds = round(age.total_seconds(), 1)
    ok = seconds <= settings.HEARTBEAT_MAX_AGE_SECONDS
    return {"ok": ok, "age_seconds": seconds, "max_age_seconds": settings.HEARTBEAT_MAX_AGE_SECONDS}


async def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    django_db = getattr(layer, "django_db", None)
    if django_db is not None:
        # PostgreSQL layer: a query through the layer's own pool. (A send/receive probe
        # would hold a session advisory lock per probe channel.)
        pool = await django_db.get_db_pool(db_params=django_db.db_params)
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        return {"ok": True, "backend": "postgres"}
    channel = await layer.new_channel("readyz")
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "readyz.probe", "nonce": nonce})
    message = await layer.receive(channel)
    return {"ok": message.get("nonce") == nonce, "backend": type(layer).__name__}


async def _timed(check: Any, timeout: float = 5.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check, timeout)
    except Exception as error:  # a readiness probe reports failures, it does not raise them
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


async def readyz(request: HttpRequest) -> JsonResponse:
    names = ("database", "channel_layer", "broker", "heartbeat")
    results = await asyncio.gather(
        _timed(sync_to_async(_check_database)()),
        _timed(_check_channel_layer()),
        _timed(sync_to_async(_check_broker, thread_sensitive=False)()),
        _timed(sync_to_async(_check_heartbeat)()),
    )
    checks = dict(zip(names, results, strict=True))
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)
