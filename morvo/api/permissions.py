from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from morvo.models import Membership


class IsTenantMember(permissions.BasePermission):
    """Authenticated, in a tenant; writes need a managing role (owner or admin) unless a
    view names its own ``write_roles``."""

    message = "You need a membership in this tenant."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership: Membership | None = getattr(request._request, "membership", None)
        if not (request.user and request.user.is_authenticated and membership is not None):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        write_roles = getattr(view, "write_roles", Membership.MANAGING_ROLES)
        if membership.role not in write_roles:
            self.message = "Your role in this tenant cannot change this."
            return False
        return True
