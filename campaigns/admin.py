"""The autopilot in the back office: campaigns with status and decision badges, the campaign
page (charts, evaluation log, actions), notifications, staff tasks, settings and the stops.

Actions are POSTs (with CSRF) that call services; refusals become admin messages and write
nothing. Another tenant's campaign answers exactly as a missing one: 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import charts, selectors, services
from campaigns.models import (
    AdCampaign,
    AutopilotGlobalSwitch,
    AutopilotSettings,
    CampaignEvaluation,
    CampaignNotification,
    CampaignTask,
    Decision,
)
from morvo import tenancy
from morvo.admin_mixins import TenantScopedModelAdmin, TenantScopedModelForm, can_manage
from morvo.models import Tenant

EVALUATION_LOG_LIMIT = 50
MAX_CSV_BYTES = 1024 * 1024


def _badge(kind: str, value: str, label: str) -> str:
    return format_html('<span class="campaign-badge campaign-{}--{}">{}</span>', kind, value or "none", label)


@admin.register(AdCampaign)
class AdCampaignAdmin(TenantScopedModelAdmin):
    list_display = ["name", "product", "platform", "status_badge", "decision_badge", "daily_budget", "start_date"]
    list_filter = ["status", "last_decision", "platform", "proposed_by_autopilot"]
    search_fields = ["name", "external_id", "product__name_ar", "product__name_en", "product__sku"]
    list_select_related = ["product"]
    ordering = ["-created_at"]
    readonly_fields = ["status", "paused_by", "last_decision", "proposed_by_autopilot", "expected_roi", "ad_copy"]
    fields = [
        "name",
        "product",
        "platform",
        "external_id",
        "objective",
        "status",
        "paused_by",
        "last_decision",
        "daily_budget",
        "total_budget",
        "currency",
        "start_date",
        "end_date",
        "creative_text",
        "targeting",
        "ad_copy",
        "proposed_by_autopilot",
        "expected_roi",
    ]
    change_form_template = "admin/campaigns/adcampaign/change_form.html"
    change_list_template = "admin/campaigns/adcampaign/change_list.html"
    actions = ["approve_selected", "pause_selected", "resume_selected", "evaluate_selected"]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: AdCampaign) -> str:
        return _badge("status", obj.status, obj.get_status_display())

    @admin.display(description=_("last decision"), ordering="last_decision")
    def decision_badge(self, obj: AdCampaign) -> str:
        if not obj.last_decision:
            return "—"
        return _badge("decision", obj.last_decision, obj.get_last_decision_display())

    # --- the campaign page ----------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="{}_{}_act".format(*info),
            ),
        ]
        return custom + super().get_urls()

    def _campaign_or_404(self, request: HttpRequest, object_id: str) -> AdCampaign:
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            raise Http404 from None
        campaign = self.get_queryset(request).select_related("tenant", "product").filter(pk=pk).first()
        if campaign is None:
            raise Http404
        return campaign  # type: ignore[no-any-return]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        campaign = self._campaign_or_404(request, object_id)
        tenant = campaign.tenant
        with tenancy.tenant_context(tenant):
            series = selectors.chart_series(tenant, campaign)
            log = list(
                selectors.evaluation_list(tenant, campaign).order_by("-created_at", "-id")[:EVALUATION_LOG_LIMIT]
            )
            open_tasks = list(selectors.task_list(tenant).filter(campaign=campaign, status=CampaignTask.Status.OPEN))
        labels = {choice.value: str(choice.label) for choice in Decision}
        context = {
            "campaign": campaign,
            "charts": charts.campaign_charts(series, labels),
            "evaluation_log": log,
            "open_tasks": open_tasks,
            "can_act": can_manage(request),
            "campaign_actions": self._available_actions(campaign),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _available_actions(self, campaign: AdCampaign) -> list[tuple[str, str]]:
        status = AdCampaign.Status
        available = []
        if campaign.status == status.DRAFT:
            available.append(("approve", gettext("Approve and launch")))
        if campaign.status == status.ACTIVE:
            available.append(("pause", gettext("Pause")))
        if campaign.status in (status.PAUSED, status.EMERGENCY_PAUSED):
            available.append(("resume", gettext("Resume")))
        if campaign.status in (status.ACTIVE, status.PAUSED):
            available.append(("evaluate", gettext("Evaluate now")))
        return available

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        campaign = self._campaign_or_404(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_manage(request):
            raise PermissionDenied
        handler = self.ACTIONS.get(action)
        if handler is None:
            raise Http404
        tenant = campaign.tenant
        try:
            with tenancy.tenant_context(tenant):
                done = handler(self, request, tenant, campaign)
        except services.CampaignError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, done)
        return HttpResponseRedirect(reverse("admin:campaigns_adcampaign_change", args=[campaign.pk]))

    def _approve(self, request: HttpRequest, tenant: Tenant, campaign: AdCampaign) -> str:
        services.campaign_launch(tenant, campaign.pk)
        return gettext("The campaign is approved and live.")

    def _pause(self, request: HttpRequest, tenant: Tenant, campaign: AdCampaign) -> str:
        services.campaign_pause(tenant, campaign.pk)
        return gettext("The campaign is paused.")

    def _resume(self, request: HttpRequest, tenant: Tenant, campaign: AdCampaign) -> str:
        services.campaign_resume(tenant, campaign.pk)
        return gettext("The campaign is running again.")

    def _evaluate(self, request: HttpRequest, tenant: Tenant, campaign: AdCampaign) -> str:
        evaluation = services.campaign_evaluate_now(tenant, campaign.pk, request.user)
        return gettext("Evaluated: %(decision)s.") % {"decision": evaluation.get_decision_display()}

    def _metrics_csv(self, request: HttpRequest, tenant: Tenant, campaign: AdCampaign) -> str:
        upload = request.FILES.get("file")
        if upload is None:
            raise services.CampaignError("invalid_csv", gettext("Choose a CSV file."), "file")
        if upload.size is not None and upload.size > MAX_CSV_BYTES:
            raise services.CampaignError("too_large", gettext("The CSV is larger than 1 MB."), "file")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise services.CampaignError("invalid_csv", gettext("The CSV must be UTF-8."), "file") from None
        saved = services.campaign_metrics_import_csv(tenant, campaign, text)
        return gettext("%(count)d day(s) of metrics saved.") % {"count": saved}

    ACTIONS: dict[str, Callable[[AdCampaignAdmin, HttpRequest, Tenant, AdCampaign], str]] = {
        "approve": _approve,
        "pause": _pause,
        "resume": _resume,
        "evaluate": _evaluate,
        "metrics-csv": _metrics_csv,
    }

    # --- bulk actions ---------------------------------------------------------------------

    def _bulk(self, request: HttpRequest, queryset: Any, act: Callable[[Tenant, int], Any], done: str) -> None:
        if not can_manage(request):
            raise PermissionDenied
        count, refused = 0, []
        for campaign in queryset.select_related("tenant"):
            try:
                with tenancy.tenant_context(campaign.tenant):
                    act(campaign.tenant, campaign.pk)
                count += 1
            except services.CampaignError as error:
                refused.append(f"{campaign.name}: {error}")
        self.message_user(request, done % {"count": count}, messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description=_("Approve and launch the selected drafts"))
    def approve_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, services.campaign_launch, gettext("%(count)d campaign(s) launched."))

    @admin.action(description=_("Pause the selected campaigns"))
    def pause_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, services.campaign_pause, gettext("%(count)d campaign(s) paused."))

    @admin.action(description=_("Resume the selected campaigns"))
    def resume_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, services.campaign_resume, gettext("%(count)d campaign(s) resumed."))

    @admin.action(description=_("Evaluate the selected campaigns now"))
    def evaluate_selected(self, request: HttpRequest, queryset: Any) -> None:
        user = request.user
        self._bulk(
            request,
            queryset,
            lambda tenant, pk: services.campaign_evaluate_now(tenant, pk, user),
            gettext("%(count)d campaign(s) evaluated."),
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        context: dict[str, Any] = {"global_stop": services.global_stop_active()}
        if tenant is not None:
            context["tenant_stop"] = services.autopilot_settings_get(tenant).emergency_stop
            context["unread_notifications"] = selectors.notification_list(tenant).filter(read_at__isnull=True).count()
        return super().changelist_view(request, {**context, **(extra_context or {})})


@admin.register(CampaignEvaluation)
class CampaignEvaluationAdmin(TenantScopedModelAdmin):
    """The evaluation log: read only."""

    list_display = [
        "created_at",
        "campaign",
        "decision_badge",
        "action_taken",
        "actor",
        "sales_impact",
        "view_impact",
        "risk_score",
    ]
    list_filter = ["decision", "action_taken", "actor"]
    search_fields = ["campaign__name", "reason_en", "reason_ar"]
    list_select_related = ["campaign"]
    ordering = ["-created_at"]

    @admin.display(description=_("decision"), ordering="decision")
    def decision_badge(self, obj: CampaignEvaluation) -> str:
        return _badge("decision", obj.decision, obj.get_decision_display())

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CampaignNotification)
class CampaignNotificationAdmin(TenantScopedModelAdmin):
    list_display = ["created_at", "level", "message", "campaign", "read_at"]
    list_filter = ["level", ("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["campaign"]
    ordering = ["-created_at"]
    actions = ["mark_read"]

    @admin.display(description=_("message"))
    def message(self, obj: CampaignNotification) -> str:
        from django.utils.translation import get_language

        return obj.message_ar if (get_language() or "").startswith("ar") else obj.message_en

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Mark as read"))
    def mark_read(self, request: HttpRequest, queryset: Any) -> None:
        now = timezone.now()
        count = queryset.filter(read_at__isnull=True).update(read_at=now)
        self.message_user(request, gettext("%(count)d notification(s) marked as read.") % {"count": count})


@admin.register(CampaignTask)
class CampaignTaskAdmin(TenantScopedModelAdmin):
    """What staff must do by hand on platforms with no API."""

    list_display = ["created_at", "kind", "campaign", "details", "status", "done_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["campaign"]
    ordering = ["status", "-created_at"]
    actions = ["mark_done"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Mark as done"))
    def mark_done(self, request: HttpRequest, queryset: Any) -> None:
        if not can_manage(request):
            raise PermissionDenied
        count = queryset.filter(status=CampaignTask.Status.OPEN).update(
            status=CampaignTask.Status.DONE, done_at=timezone.now()
        )
        self.message_user(request, gettext("%(count)d task(s) done.") % {"count": count})


class AutopilotSettingsForm(TenantScopedModelForm):
    impact_auth_token = forms.CharField(
        label=_("auth token"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the saved token."),
    )

    class Meta:
        model = AutopilotSettings
        exclude = ["tenant"]

    def clean_impact_auth_token(self) -> str:
        value = self.cleaned_data.get("impact_auth_token") or ""
        return value or (self.instance.impact_auth_token if self.instance.pk else "")


@admin.register(AutopilotSettings)
class AutopilotSettingsAdmin(TenantScopedModelAdmin):
    form = AutopilotSettingsForm
    list_display = [
        "__str__",
        "enabled",
        "emergency_stop",
        "auto_propose",
        "auto_launch",
        "adaptive_thresholds",
        "tick_minutes",
    ]
    fieldsets = [
        (
            _("Autopilot"),
            {
                "fields": [
                    "enabled",
                    "emergency_stop",
                    "tick_minutes",
                    "window_days",
                    "max_budget_step",
                    "adaptive_thresholds",
                ]
            },
        ),
        (
            _("Proposals"),
            {
                "fields": [
                    "auto_propose",
                    "auto_launch",
                    "proposals_per_day",
                    "min_stock",
                    "min_views_to_sales",
                    "min_price",
                    "min_category_share",
                ]
            },
        ),
        (_("Ad platform"), {"fields": ["impact_base_url", "impact_account_sid", "impact_auth_token"]}),
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        if not super().has_add_permission(request) or tenant is None:
            return False
        return not AutopilotSettings.objects.for_tenant(tenant).exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AutopilotGlobalSwitch)
class AutopilotGlobalSwitchAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The platform-wide emergency stop: superusers only."""

    list_display = ["__str__", "emergency_stop", "reason", "updated_at"]
    fields = ["emergency_stop", "reason"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and not AutopilotGlobalSwitch.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AutopilotGlobalSwitch, form: Any, change: bool) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)
