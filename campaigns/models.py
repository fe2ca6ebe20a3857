"""Ad campaigns, their daily metrics, the autopilot's evaluations, settings and notices.

Money is ``Decimal`` in the tenant's currency; every row belongs to one tenant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from morvo.fields import EncryptedCharField
from morvo.tenancy import TenantScopedModel

ZERO = Decimal("0")


class Platform(models.TextChoices):
    MANUAL = "manual", _("Manual (staff tasks)")
    IMPACT = "impact", _("Impact-style REST API")


class Decision(models.TextChoices):
    CONTINUE = "CONTINUE", _("Continue")
    OPTIMIZE = "OPTIMIZE", _("Optimise")
    MONITOR = "MONITOR", _("Monitor")
    PAUSE = "PAUSE", _("Pause")
    EMERGENCY_PAUSE = "EMERGENCY_PAUSE", _("Emergency pause")


class AdCampaign(TenantScopedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        EMERGENCY_PAUSED = "emergency_paused", _("Emergency paused")
        COMPLETED = "completed", _("Completed")

    class Objective(models.TextChoices):
        AWARENESS = "awareness", _("Awareness")
        TRAFFIC = "traffic", _("Traffic")
        CONVERSIONS = "conversions", _("Conversions")
        SALES = "sales", _("Sales")

    class PausedBy(models.TextChoices):
        NOBODY = "", _("Nobody")
        AUTOPILOT = "autopilot", _("Autopilot")
        PERSON = "person", _("A person")

    # Statuses the loop evaluates: live campaigns, and those the autopilot itself paused
    # (it may resume them); emergency pauses wait for a person.
    LOOP_STATUSES: ClassVar[tuple[str, ...]] = (Status.ACTIVE, Status.PAUSED)

    product = models.ForeignKey(
        "crm.Product", verbose_name=_("product"), on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices, default=Platform.MANUAL)
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    name = models.CharField(_("name"), max_length=200)
    objective = models.CharField(_("objective"), max_length=12, choices=Objective.choices, default=Objective.SALES)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    paused_by = models.CharField(
        _("paused by"), max_length=10, choices=PausedBy.choices, default=PausedBy.NOBODY, blank=True
    )
    daily_budget = models.DecimalField(
        _("daily budget"), max_digits=12, decimal_places=2, validators=[MinValueValidator(ZERO)]
    )
    total_budget = models.DecimalField(
        _("total budget"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(ZERO)],
    )
    currency = models.CharField(_("currency"), max_length=3, default="SAR")
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"), null=True, blank=True)
    creative_text = models.TextField(_("creative text"), blank=True)
    ad_copy = models.JSONField(_("ad copy"), default=dict, blank=True)
    targeting = models.JSONField(_("targeting"), default=dict, blank=True)
    proposed_by_autopilot = models.BooleanField(_("proposed by the autopilot"), default=False)
    expected_roi = models.DecimalField(_("expected ROI"), max_digits=14, decimal_places=2, null=True, blank=True)
    # The last tick slot this campaign was claimed for: the loop's once-per-window guard.
    evaluated_slot = models.DateTimeField(_("last evaluated slot"), null=True, blank=True, editable=False)
    last_decision = models.CharField(_("last decision"), max_length=16, choices=Decision.choices, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(daily_budget__gte=0), name="campaign_daily_budget_not_negative"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="campaign_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"])]
        verbose_name = _("ad campaign")
        verbose_name_plural = _("ad campaigns")

    def __str__(self) -> str:
        return self.name


class CampaignDailyMetric(TenantScopedModel):
    campaign = models.ForeignKey(AdCampaign, on_delete=models.CASCADE, related_name="daily_metrics")
    date = models.DateField(_("date"))
    spend = models.DecimalField(_("spend"), max_digits=12, decimal_places=2, default=ZERO)
    impressions = models.PositiveIntegerField(_("impressions"), default=0)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=12, decimal_places=2, default=ZERO)
    new_customers = models.PositiveIntegerField(_("new customers"), default=0)

    class Meta:
        ordering = ["-date", "campaign_id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "date"], name="campaign_metric_unique_day"),
            models.CheckConstraint(
                condition=models.Q(spend__gte=0, revenue__gte=0), name="campaign_metric_money_not_negative"
            ),
        ]
        verbose_name = _("daily campaign metric")
        verbose_name_plural = _("daily campaign metrics")

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.date}"


class CampaignEvaluation(TenantScopedModel):
    class Action(models.TextChoices):
        NONE = "none", _("None")
        PAUSED = "paused", _("Paused")
        EMERGENCY_PAUSED = "emergency_paused", _("Emergency paused")
        RESUMED = "resumed", _("Resumed")
        BUDGET_CHANGED = "budget_changed", _("Budget changed")
        STOPPED = "stopped", _("Not acted: emergency stop")
        FAILED = "failed", _("Action failed")

    class Actor(models.TextChoices):
        AUTOPILOT = "autopilot", _("Autopilot")
        PERSON = "person", _("A person")

    campaign = models.ForeignKey(AdCampaign, on_delete=models.CASCADE, related_name="evaluations")
    slot = models.DateTimeField(_("tick slot"), null=True, blank=True)
    window_start = models.DateField(_("window start"))
    window_end = models.DateField(_("window end"))
    baseline_start = models.DateField(_("baseline start"))
    baseline_end = models.DateField(_("baseline end"))
    baseline_sales = models.DecimalField(_("baseline sales"), max_digits=14, decimal_places=2)
    current_sales = models.DecimalField(_("current sales"), max_digits=14, decimal_places=2)
    baseline_views = models.DecimalField(_("baseline views"), max_digits=14, decimal_places=2)
    current_views = models.DecimalField(_("current views"), max_digits=14, decimal_places=2)
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2)
    cost = models.DecimalField(_("cost"), max_digits=14, decimal_places=2)
    new_customers = models.PositiveIntegerField(_("new customers"))
    product_price = models.DecimalField(_("product price"), max_digits=12, decimal_places=2)
    sales_impact = models.DecimalField(_("sales impact %"), max_digits=20, decimal_places=6)
    view_impact = models.DecimalField(_("view impact %"), max_digits=20, decimal_places=6)
    roas = models.DecimalField(_("ROAS"), max_digits=20, decimal_places=6, null=True, blank=True)
    cpa = models.DecimalField(_("CPA"), max_digits=20, decimal_places=6, null=True, blank=True)
    efficiency_score = models.DecimalField(_("efficiency score"), max_digits=20, decimal_places=6)
    risk_score = models.DecimalField(
        _("risk score"),
        max_digits=6,
        decimal_places=4,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("1"))],
    )
    risk_factors = models.JSONField(_("risk factors"), default=dict)
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    reason_ar = models.TextField(_("reason (Arabic)"))
    reason_en = models.TextField(_("reason (English)"))
    thresholds = models.JSONField(_("thresholds used"), default=dict)
    action_taken = models.CharField(_("action taken"), max_length=16, choices=Action.choices, default=Action.NONE)
    action_detail = models.JSONField(_("action detail"), default=dict, blank=True)
    actor = models.CharField(_("actor"), max_length=10, choices=Actor.choices, default=Actor.AUTOPILOT)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The loop evaluates a campaign once per slot, whatever overlaps.
            models.UniqueConstraint(
                fields=["campaign", "slot"],
                condition=models.Q(actor="autopilot"),
                name="evaluation_once_per_slot",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "campaign", "-created_at"])]
        verbose_name = _("campaign evaluation")
        verbose_name_plural = _("campaign evaluations")

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.window_end} {self.decision}"


class AutopilotSettings(TenantScopedModel):
    """One row per tenant (made on first use with these defaults)."""

    enabled = models.BooleanField(_("autopilot acts"), default=True)
    emergency_stop = models.BooleanField(_("emergency stop"), default=False)
    auto_launch = models.BooleanField(_("launch proposals without approval"), default=False)
    auto_propose = models.BooleanField(_("propose campaigns daily"), default=False)
    adaptive_thresholds = models.BooleanField(_("adaptive thresholds"), default=False)
    tick_minutes = models.PositiveIntegerField(
        _("minutes between evaluations"), default=60, validators=[MinValueValidator(5), MaxValueValidator(24 * 60)]
    )
    window_days = models.PositiveIntegerField(
        _("window (days)"), default=7, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    max_budget_step = models.DecimalField(
        _("largest budget increase per tick"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("0.50"),
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("5"))],
    )
    # Proposal criteria.
    min_stock = models.PositiveIntegerField(_("minimum stock"), default=50)
    min_views_to_sales = models.DecimalField(
        _("minimum views-to-sales ratio"), max_digits=8, decimal_places=2, default=Decimal("2.00")
    )
    min_price = models.DecimalField(_("minimum price"), max_digits=12, decimal_places=2, default=Decimal("20.00"))
    min_category_share = models.DecimalField(
        _("minimum category popularity (share of views)"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.0500"),
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("1"))],
    )
    proposals_per_day = models.PositiveIntegerField(_("proposals per day"), default=3)
    last_proposed_on = models.DateField(_("last proposals"), null=True, blank=True, editable=False)
    # The Impact-style platform account.
    impact_base_url = models.URLField(_("platform base URL"), blank=True)
    impact_account_sid = models.CharField(_("account SID"), max_length=100, blank=True)
    # Stored encrypted (about 2.5 times the 200 characters the form allows, plus 100).
    impact_auth_token = EncryptedCharField(_("auth token"), max_length=600, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="autopilot_settings_one_per_tenant")]
        verbose_name = _("autopilot settings")
        verbose_name_plural = _("autopilot settings")

    def __str__(self) -> str:
        return str(_("Autopilot settings"))


class AutopilotGlobalSwitch(models.Model):
    """The platform-wide emergency stop (one row, id 1), for superusers."""

    emergency_stop = models.BooleanField(_("global emergency stop"), default=False)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("global autopilot switch")
        verbose_name_plural = _("global autopilot switch")

    def __str__(self) -> str:
        return str(_("Global autopilot switch"))


class AdapterCircuit(TenantScopedModel):
    """The circuit breaker of one tenant's platform: shared by every worker."""

    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices)
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    open_until = models.DateTimeField(_("open until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "platform"], name="adapter_circuit_unique")]
        verbose_name = _("adapter circuit")
        verbose_name_plural = _("adapter circuits")

    def __str__(self) -> str:
        return f"{self.platform}: {self.failures}"


class CampaignNotification(TenantScopedModel):
    """What the autopilot did, for staff in the admin."""

    class Level(models.TextChoices):
        INFO = "info", _("Information")
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    campaign = models.ForeignKey(AdCampaign, on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    evaluation = models.ForeignKey(
        CampaignEvaluation, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.INFO)
    message_ar = models.TextField(_("message (Arabic)"))
    message_en = models.TextField(_("message (English)"))
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("autopilot notification")
        verbose_name_plural = _("autopilot notifications")

    def __str__(self) -> str:
        return self.message_en[:80]


class CampaignTask(TenantScopedModel):
    """A change staff make by hand on a platform with no API (the manual adapter)."""

    class Kind(models.TextChoices):
        CREATE = "create", _("Create the campaign")
        PAUSE = "pause", _("Pause the campaign")
        RESUME = "resume", _("Resume the campaign")
        SET_BUDGET = "set_budget", _("Change the daily budget")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")

    campaign = models.ForeignKey(AdCampaign, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    details = models.JSONField(_("details"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=6, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)

    class Meta:
        ordering = ["status", "-created_at", "-id"]
        verbose_name = _("staff task")
        verbose_name_plural = _("staff tasks")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.campaign_id}"
