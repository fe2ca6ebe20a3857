from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class MorvoAdminSite(admin.AdminSite):
    """The operator dashboard. Members of a tenant work in their selected tenant; superusers
    see every tenant. Sign-in goes through the accounts pages, so two-factor applies."""

    site_header = _("Morvo back office")
    site_title = _("Morvo")
    index_title = _("Dashboard")
    index_template = "admin/morvo_index.html"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return bool(user.is_superuser or getattr(request, "membership", None) is not None)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_authenticated:
            return render(request, "admin/no_access.html", status=403)
        return redirect_to_login(request.GET.get("next", reverse("admin:index")), reverse("account_login"))

    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:  # type: ignore[override]
        if request.method == "POST":  # the admin's own sign-out button posts here
            from allauth.account.adapter import get_adapter

            get_adapter(request).logout(request)
            return redirect(reverse("account_login"))
        return redirect(reverse("account_logout"))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:  # type: ignore[override]
        from crm.selectors import store_headline

        tenant = getattr(request, "tenant", None)
        extra_context = {**(extra_context or {}), "headline": store_headline(tenant) if tenant else None}
        return super().index(request, extra_context)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        from morvo.models import Tenant

        context = super().each_context(request)
        if request.user.is_authenticated:
            if request.user.is_superuser:
                tenants = list(Tenant.objects.filter(is_active=True).order_by("name")[:200])
            else:
                tenants = list(Tenant.objects.filter(is_active=True, memberships__user=request.user).order_by("name"))
            context["switchable_tenants"] = tenants
        return context
