from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm import selectors as crm_selectors
from morvo import selectors
from morvo.middleware import SESSION_TENANT_KEY
from morvo.models import Tenant


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("app-home")
    return redirect("account_login")


@login_required
def app_home(request: Any) -> HttpResponse:
    tenant = getattr(request, "tenant", None)
    context = {
        "memberships": selectors.membership_list(request.user),
        "headline": crm_selectors.store_headline(tenant) if tenant is not None else None,
    }
    return render(request, "morvo/app_home.html", context)


@login_required
@require_POST
def tenant_switch(request: Any) -> HttpResponse:
    """Select the tenant to work in. Only tenants the user belongs to (any, for superusers)."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError as error:
        raise Http404 from error
    allowed = Tenant.objects.filter(pk=tenant_id, is_active=True)
    if not request.user.is_superuser:
        allowed = allowed.filter(memberships__user=request.user)
    if not allowed.exists():
        raise Http404
    request.session[SESSION_TENANT_KEY] = tenant_id
    target = request.POST.get("next") or "/app/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/app/"
    return HttpResponseRedirect(target)
