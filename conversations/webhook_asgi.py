"""Channel webhooks served straight from ASGI, ahead of Django's request handling.

Providers post in bursts and retry when an acknowledgement is slow, so ``/webhooks/<channel>/
<token>/`` takes the shortest path daphne allows: the body is read on the event loop (no more
than the channel's limit is kept), then one of a few long-lived threads answers it with
:func:`conversations.webhooks.webhook_handle`, the same code as the Django view. Skipped are
the middleware (sessions, CSRF, authentication, messages, the tenant of a logged-in user: none
of it applies to a provider's signed request), URL resolution, and the thread Django starts for
every request. Every other request goes to ``application`` unchanged.

The answer is the one the Django view would give (404 unknown inbox, 405, 413, 401/403 bad
signature, 400 malformed, 200 with the adapter's acknowledgement), in the language of the
request's ``Accept-Language``; the request is counted in the same Prometheus histogram.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

WEBHOOK_PATH = re.compile(r"^/webhooks/(?P<channel>[-a-zA-Z0-9_]+)/(?P<token>[^/]+)/$")
DEFAULT_THREADS = 4


class WebhookApplication:
    """ASGI middleware: webhook paths answered here, everything else passed to ``application``."""

    def __init__(self, application: ASGIApp, threads: int | None = None) -> None:
        self.application = application
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    from django.conf import settings

                    threads = self.threads or int(getattr(settings, "WEBHOOK_THREADS", DEFAULT_THREADS))
                    self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="morvo-webhook")
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = WEBHOOK_PATH.match(_path(scope)) if scope["type"] == "http" else None
        if match is None:
            await self.application(scope, receive, send)
            return
        from conversations.webhooks import body_limit

        channel, token = match["channel"], match["token"]
        read = await _read_body(scope, receive, body_limit(channel))
        if read is None:  # the client went away
            return
        body, too_large = read
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(
            self.executor(), answer, scope, body, too_large, channel, token
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _path(scope: Scope) -> str:
    path = str(scope.get("path") or "")
    root = str(scope.get("root_path") or "")
    return path[len(root) :] if root and path.startswith(root) else path


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The request body and whether it was over ``limit`` (then only the first ``limit``
    bytes are kept and the rest is read and dropped). None when the client disconnected."""
    too_large = _declared_length(scope) > limit
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk and not too_large:
            size += len(chunk)
            if size > limit:
                too_large = True
                chunks.clear()
            else:
                chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), too_large


def answer(scope: Scope, body: bytes, too_large: bool, channel: str, token: str) -> tuple[int, list[Any], bytes]:
    """Answer one webhook on a thread of the pool: status, ASGI headers and body. Database
    connections are handled as Django handles them around a request."""
    from django.core.exceptions import SuspiciousOperation
    from django.core.handlers.asgi import ASGIRequest
    from django.db import close_old_connections
    from django.utils import translation

    from conversations.webhooks import error_response, webhook_handle
    from morvo.metrics import REQUEST_LATENCY

    started = time.perf_counter()
    close_old_connections()
    request = ASGIRequest(scope, BytesIO(body))
    try:
        with translation.override(translation.get_language_from_request(request)):
            try:
                response = webhook_handle(request, channel, token, body_too_large=too_large)
            except SuspiciousOperation as error:  # a Host header not in ALLOWED_HOSTS, say
                logger.warning("webhook refused: %s", error)
                response = error_response(400, "malformed_payload")
    except Exception:
        logger.exception("webhook of channel %s failed", channel)
        response = error_response(500, "server_error")
    finally:
        close_old_connections()
    content = response.content
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    headers.append((b"content-length", str(len(content)).encode()))
    headers.append((b"x-content-type-options", b"nosniff"))
    REQUEST_LATENCY.labels(view="channel-webhook", method=request.method, status=str(response.status_code)).observe(
        time.perf_counter() - started
    )
    return response.status_code, headers, content
