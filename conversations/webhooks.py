"""Inbound webhooks of channel inboxes: ``/webhooks/<channel>/<inbox token>/``.

Each request is answered quickly: find the inbox by its token (404 when unknown), refuse an
oversized body (413), verify the provider's signature (401 missing, 403 wrong), parse (400
when malformed), store each event once (``conversations.services.webhook_events_record``,
deduplicated by the provider's ids) and acknowledge. The work (contacts, messages, turns,
receipts) runs in Celery. A refused request stores nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from conversations import services
from conversations.channels import adapter_for
from conversations.channels.base import WebhookRejected
from conversations.models import Inbox
from morvo import tenancy

logger = logging.getLogger(__name__)


def _messages() -> dict[str, str]:
    return {
        "not_found": _("Not found."),
        "payload_too_large": _("The payload is too large."),
        "missing_signature": _("The request is not signed."),
        "bad_signature": _("The signature does not match."),
        "stale_timestamp": _("The signature's timestamp is too old."),
        "malformed_payload": _("The payload is not what this channel sends."),
        "method_not_allowed": _("Method not allowed."),
        "server_error": _("Something went wrong on our side; please retry."),
    }


# Active inboxes by (channel, token), each with the time it stops being trusted. A provider
# posts many webhooks a second to one inbox; looking it up once every few seconds is enough.
# Saving or deleting an inbox or a tenant in this process empties the cache at once (see
# ``inbox_cache_clear``); other processes notice within WEBHOOK_INBOX_CACHE_SECONDS.
_inboxes: dict[tuple[str, str], tuple[float, Inbox]] = {}
_INBOX_CACHE_LIMIT = 10_000
_cache_lock = threading.Lock()
_generation = 0


def inbox_for_token(channel: str, token: str) -> Inbox | None:
    """The active inbox of an active tenant that this webhook path names, or None."""
    key = (channel, token)
    now = time.monotonic()
    cached = _inboxes.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    generation = _generation
    inbox = (
        Inbox.objects.all_tenants()
        .select_related("tenant")
        .filter(secret=token, channel_type=channel, is_active=True, tenant__is_active=True)
        .first()
    )
    seconds = float(getattr(settings, "WEBHOOK_INBOX_CACHE_SECONDS", 0))
    if inbox is None or seconds <= 0:
        _inboxes.pop(key, None)
        return inbox
    with _cache_lock:
        # Not when the cache was cleared while we read: what we read may be the old row.
        if generation == _generation:
            if len(_inboxes) >= _INBOX_CACHE_LIMIT:
                _inboxes.clear()
            _inboxes[key] = (now + seconds, inbox)
    return inbox


def inbox_cache_clear(**_: object) -> None:
    """Forget every cached inbox (connected to saves and deletes of inboxes and tenants): now,
    and again when the change commits, since a lookup made in between still read the old row."""
    _forget()
    transaction.on_commit(_forget)


def _forget() -> None:
    global _generation
    with _cache_lock:
        _generation += 1
        _inboxes.clear()


def body_limit(channel: str) -> int:
    """The largest body a webhook of this channel may carry, in bytes."""
    adapter = adapter_for(channel)
    largest = adapter.max_body_bytes if adapter is not None else 0
    return min(largest, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or largest)


def error_response(status: int, code: str) -> JsonResponse:
    """An error in the API's format."""
    return JsonResponse({"error": {"status": status, "code": code, "message": _messages()[code]}}, status=status)


@csrf_exempt
def channel_webhook(request: HttpRequest, channel: str, token: str) -> HttpResponse:
    """The Django view (the test client, WSGI). Under daphne, ``conversations.webhook_asgi``
    answers these paths before Django's middleware, with the same :func:`webhook_handle`."""
    return webhook_handle(request, channel, token)


def webhook_handle(request: HttpRequest, channel: str, token: str, body_too_large: bool = False) -> HttpResponse:
    """Answer one webhook request. ``body_too_large``: the server stopped reading the body at
    the channel's limit (the answer is then 413, once the inbox is known)."""
    adapter = adapter_for(channel)
    if adapter is None:
        return error_response(404, "not_found")
    inbox = inbox_for_token(channel, token)
    if inbox is None:
        return error_response(404, "not_found")
    if request.method == "GET":
        answer = adapter.handshake(inbox, request)
        return answer if answer is not None else error_response(405, "method_not_allowed")
    if request.method != "POST":
        return error_response(405, "method_not_allowed")
    if body_too_large:
        return error_response(413, "payload_too_large")
    limit = body_limit(channel)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(400, "malformed_payload")
    if declared > limit:
        return error_response(413, "payload_too_large")
    try:
        body = request.body
    except RequestDataTooBig:
        return error_response(413, "payload_too_large")
    if len(body) > limit:
        return error_response(413, "payload_too_large")
    tenant = inbox.tenant
    with tenancy.tenant_context(tenant):
        try:
            adapter.verify(inbox, request, body)
            events = adapter.parse(inbox, request, body)
        except WebhookRejected as rejected:
            logger.info("webhook of inbox %s refused: %s (%s)", inbox.pk, rejected.code, rejected.message)
            return error_response(rejected.status, rejected.code)
        services.webhook_events_record(tenant, inbox, events)
    return adapter.acknowledge(events)
