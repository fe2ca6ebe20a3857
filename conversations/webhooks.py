"""Inbound webhooks of channel inboxes: ``/webhooks/<channel>/<inbox token>/``.

Each request is answered quickly: find the inbox by its token (404 when unknown), refuse an
oversized body (413), verify the provider's signature (401 missing, 403 wrong), parse (400
when malformed), store each event once (``conversations.services.webhook_events_record``,
deduplicated by the provider's ids) and acknowledge. The work (contacts, messages, turns,
receipts) runs in Celery. A refused request stores nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
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
    }


def error_response(status: int, code: str) -> JsonResponse:
    """An error in the API's format."""
    return JsonResponse({"error": {"status": status, "code": code, "message": _messages()[code]}}, status=status)


@csrf_exempt
def channel_webhook(request: HttpRequest, channel: str, token: str) -> HttpResponse:
    adapter = adapter_for(channel)
    if adapter is None:
        return error_response(404, "not_found")
    inbox = (
        Inbox.objects.all_tenants()
        .select_related("tenant")
        .filter(secret=token, channel_type=channel, is_active=True, tenant__is_active=True)
        .first()
    )
    if inbox is None:
        return error_response(404, "not_found")
    if request.method == "GET":
        answer = adapter.handshake(inbox, request)
        return answer if answer is not None else error_response(405, "method_not_allowed")
    if request.method != "POST":
        return error_response(405, "method_not_allowed")
    limit = min(adapter.max_body_bytes, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or adapter.max_body_bytes)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
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
