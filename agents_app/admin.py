"""The brain in the back office: versioned system prompts, AI settings, and runs with their
steps and costs (per conversation, per tenant and per day)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agents_app.models import AgentRun, AgentStep, AISettings, SystemPrompt
from agents_app.prompts import system_prompt_save_version
from morvo.admin_mixins import MissingObjectIs404Mixin, TenantScopedInline, TenantScopedModelAdmin, can_manage, can_view


class SystemPromptForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = SystemPrompt
        fields = ["name", "language", "industry", "tone", "content"]


@admin.register(SystemPrompt)
class SystemPromptAdmin(MissingObjectIs404Mixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Saving never overwrites: it stores the next version and makes it active. Staff of a
    business who edit a global template get their own override; only superusers change the
    global templates. Every earlier version stays listed (filter "active" to hide them)."""

    form = SystemPromptForm
    list_display = ["name", "industry", "language", "version", "is_active", "owner", "created_by", "created_at"]
    list_filter = ["is_active", "name", "industry", "language"]
    search_fields = ["content", "tone"]
    ordering = ["name", "industry", "language", "-version"]

    @admin.display(description=_("owner"))
    def owner(self, obj: SystemPrompt) -> str:
        return obj.tenant.name if obj.tenant is not None else str(_("global template"))

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request).select_related("tenant", "created_by")
        if request.user.is_superuser:
            return queryset
        tenant = getattr(request, "tenant", None)
        return queryset.filter(Q(tenant__isnull=True) | Q(tenant=tenant)) if tenant else queryset.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # History is kept: a version is retired by saving a newer one, never deleted.
        return False

    def save_model(self, request: HttpRequest, obj: SystemPrompt, form: Any, change: bool) -> None:
        tenant = None if request.user.is_superuser and (obj.tenant_id is None) else getattr(request, "tenant", None)
        if request.user.is_superuser and change and obj.tenant_id:
            tenant = obj.tenant
        saved = system_prompt_save_version(
            tenant=tenant,
            name=form.cleaned_data["name"],
            language=form.cleaned_data["language"],
            industry=form.cleaned_data["industry"],
            content=form.cleaned_data["content"],
            tone=form.cleaned_data.get("tone", ""),
            author=request.user,
        )
        obj.pk = saved.pk
        obj.version = saved.version
        obj.tenant = saved.tenant


@admin.register(AISettings)
class AISettingsAdmin(TenantScopedModelAdmin):
    list_display = ["tenant", "monthly_budget_usd", "budget_exhausted_month"]
    readonly_fields = ["budget_exhausted_month"]


STEP_FIELDS = (
    "position",
    "kind",
    "name",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "error",
)


class AgentStepInline(TenantScopedInline):
    model = AgentStep
    extra = 0
    can_delete = False
    fields = STEP_FIELDS
    readonly_fields = STEP_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AgentRun)
class AgentRunAdmin(TenantScopedModelAdmin):
    """Read-only traces. The list page sums cost and tokens per day, per conversation and for
    the month, for the selected business."""

    list_display = [
        "started_at",
        "kind",
        "intent",
        "language",
        "brain",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "conversation",
    ]
    list_filter = ["kind", "brain", "status", "intent", "language"]
    date_hierarchy = "started_at"
    inlines = [AgentStepInline]
    readonly_fields = [
        "kind",
        "conversation",
        "message",
        "intent",
        "language",
        "brain",
        "status",
        "plan",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "error",
        "started_at",
        "finished_at",
    ]
    change_list_template = "admin/agents_app/agentrun/change_list.html"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        runs = self.get_queryset(request)
        since = timezone.now() - timedelta(days=14)
        month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        per_day = (
            runs.filter(started_at__gte=since)
            .annotate(day=TruncDate("started_at"))
            .values("day")
            .annotate(runs=Count("id"), tokens=Sum("prompt_tokens") + Sum("completion_tokens"), cost=Sum("cost_usd"))
            .order_by("-day")
        )
        per_conversation = (
            runs.filter(conversation__isnull=False, started_at__gte=month_start)
            .values("conversation", "conversation__title")
            .annotate(runs=Count("id"), cost=Sum("cost_usd"))
            .order_by("-cost", "-runs")[:10]
        )
        per_tenant = (
            runs.filter(started_at__gte=month_start)
            .values("tenant__name")
            .annotate(runs=Count("id"), cost=Sum("cost_usd"))
            .order_by("-cost")[:20]
        )
        month = runs.filter(started_at__gte=month_start).aggregate(cost=Sum("cost_usd"), runs=Count("id"))
        context = {
            **(extra_context or {}),
            "cost_per_day": list(per_day),
            "cost_per_conversation": list(per_conversation),
            "cost_per_tenant": list(per_tenant),
            "month_cost": month["cost"] or Decimal("0"),
            "month_runs": month["runs"],
        }
        return super().changelist_view(request, extra_context=context)
