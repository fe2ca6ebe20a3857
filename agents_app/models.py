"""The brain's records: versioned system prompts, per-tenant AI settings, and traces.

Every turn or job is an ``AgentRun``; every LLM call, tool call and pipeline stage inside it is
an ``AgentStep`` with its model, tokens, latency, error and cost. The cost is computed from the
price table in force when the call was made and stored with the unit prices used, so a later
change of prices never rewrites history.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from morvo.tenancy import TenantScopedModel


class SystemPrompt(models.Model):
    """One version of a system prompt. Global prompts (no tenant) are the templates per business
    type; a tenant's own prompt with the same name overrides the global one. Editing creates a
    new version and makes it the active one; older versions stay as history."""

    class Industry(models.TextChoices):
        RETAIL = "retail", _("Retail / e-commerce")
        RESTAURANT = "restaurant", _("Restaurant")
        BEAUTY_SALON = "beauty_salon", _("Beauty salon")
        GENERAL = "general", _("General")

    tenant = models.ForeignKey(
        "morvo.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="system_prompts"
    )
    name = models.CharField(_("name"), max_length=60, default="companion")
    language = models.CharField(_("language"), max_length=2, default="ar")
    industry = models.CharField(_("industry"), max_length=20, choices=Industry.choices, default=Industry.GENERAL)
    tone = models.CharField(_("tone"), max_length=200, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    content = models.TextField(_("content"))
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("system prompt")
        verbose_name_plural = _("system prompts")
        ordering = ["name", "industry", "language", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name", "industry", "language", "version"],
                name="system_prompt_version_unique",
                nulls_distinct=False,
            ),
            models.UniqueConstraint(
                fields=["tenant", "name", "industry", "language"],
                condition=Q(is_active=True),
                name="system_prompt_one_active",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        owner = self.tenant.slug if self.tenant is not None else "global"
        return f"{self.name} / {self.industry} / {self.language} v{self.version} ({owner})"


class AISettings(TenantScopedModel):
    """A tenant's brain settings: its monthly LLM budget and whether staff were told it ran out."""

    monthly_budget_usd = models.DecimalField(
        _("monthly LLM budget (USD)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Past it, the offline brain answers until the month ends. Empty: no limit."),
    )
    budget_exhausted_month = models.CharField(max_length=7, blank=True, editable=False)

    class Meta:
        verbose_name = _("AI settings")
        verbose_name_plural = _("AI settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="ai_settings_one_per_tenant")]

    def __str__(self) -> str:
        return f"AI settings of {self.tenant_id}"


class AgentRun(TenantScopedModel):
    class Kind(models.TextChoices):
        TURN = "turn", _("Chat turn")
        JOB = "job", _("Job")
        ANALYZE = "analyze", _("Analysis")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FALLBACK = "fallback", _("Answered by the offline brain after a failure")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TURN)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="agent_runs"
    )
    message = models.ForeignKey(
        "conversations.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="agent_runs"
    )
    intent = models.CharField(_("intent"), max_length=30, blank=True)
    language = models.CharField(_("language"), max_length=5, blank=True)
    brain = models.CharField(_("brain"), max_length=20, blank=True, help_text=_("offline, llm or crewai"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    plan = models.JSONField(_("plan"), default=list, blank=True)
    # The router's reading of the message (language, intent, priority, sentiment, entities):
    # later turns of the conversation build on it without analysing the message again.
    analysis = models.JSONField(_("analysis"), default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    cost_usd = models.DecimalField(_("cost (USD)"), max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("agent run")
        verbose_name_plural = _("agent runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["tenant", "started_at"], name="agent_run_tenant_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.intent or '-'})"


class AgentStep(TenantScopedModel):
    class Kind(models.TextChoices):
        STAGE = "stage", _("Pipeline stage")
        LLM = "llm", _("LLM call")
        TOOL = "tool", _("Tool call")
        GUARD = "guard", _("Guardrail")

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    provider = models.CharField(_("provider"), max_length=60, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    input_price_per_million = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    output_price_per_million = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("agent step")
        verbose_name_plural = _("agent steps")
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"
