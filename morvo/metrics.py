"""Prometheus metrics, shared across the web, worker and beat processes through
``PROMETHEUS_MULTIPROC_DIR`` (set in settings before this module is imported)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_LATENCY = Histogram(
    "morvo_http_request_duration_seconds",
    "HTTP request latency by view",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OPEN_WEBSOCKETS = Gauge(
    "morvo_open_websockets", "Open websocket connections", ["consumer"], multiprocess_mode="livesum"
)
CELERY_TASKS = Counter("morvo_celery_tasks_total", "Celery tasks finished, by outcome", ["task", "state"])


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None and match.view_name else "unresolved"
        REQUEST_LATENCY.labels(view=view, method=request.method, status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = getattr(settings, "METRICS_TOKEN", "")
    if expected and request.headers.get("Authorization") != f"Bearer {expected}":
        return HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
