"""One error format for the whole API:

    {"error": {"status": 404, "code": "not_found", "message": "Not found.", "fields": {...}}}

``fields`` appears for validation errors, keyed by field name.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_message(next(iter(detail.values())))
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        code, message = "not_found", "Not found."
    elif isinstance(exc, PermissionDenied):
        code, message = "permission_denied", "You do not have permission to perform this action."
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message = _first_message(exc.detail)
    else:  # pragma: no cover - DRF only handles the types above
        code, message = "error", str(exc)
    body: dict[str, Any] = {"status": response.status_code, "code": code, "message": message}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = exc.detail
        body["message"] = "Invalid input."
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        body["retry_after"] = response.headers.get("Retry-After")
    response.data = {"error": body}
    return response
