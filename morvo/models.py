from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def _validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(value)s"), params={"value": value})


class Tenant(models.Model):
    """A business using Morvo. Every tenant-scoped row points here."""

    class BusinessType(models.TextChoices):
        RETAIL = "retail", _("Retail / e-commerce")
        RESTAURANT = "restaurant", _("Restaurant")
        BEAUTY_SALON = "beauty_salon", _("Beauty salon")
        GENERAL = "general", _("General")

    class Language(models.TextChoices):
        ARABIC = "ar", _("Arabic")
        ENGLISH = "en", _("English")

    # What the tenant's owners and admins may change about their business (API and admin).
    EDITABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "business_type",
        "target_audience",
        "brand_voice",
        "default_language",
        "timezone",
        "currency",
        "primary_color",
    )

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    business_type = models.CharField(
        _("business type"), max_length=20, choices=BusinessType.choices, default=BusinessType.GENERAL
    )
    target_audience = models.TextField(_("target audience"), blank=True)
    brand_voice = models.TextField(_("brand voice"), blank=True)
    default_language = models.CharField(
        _("default language"), max_length=2, choices=Language.choices, default=Language.ARABIC
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Riyadh", validators=[_validate_timezone])
    currency = models.CharField(_("currency"), max_length=3, default="SAR")
    primary_color = models.CharField(_("brand colour"), max_length=7, default="#0f766e")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        AGENT = "agent", _("Agent")
        VIEWER = "viewer", _("Viewer")

    # Roles that may change the tenant's data (viewers only read; agents work the inbox).
    MANAGING_ROLES: ClassVar[frozenset[str]] = frozenset({Role.OWNER, Role.ADMIN})

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]
        ordering = ["created_at", "id"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in self.MANAGING_ROLES


def hash_token(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """An integrator's key. It belongs to one user *and* one tenant; only its hash is stored."""

    PREFIX = "mv_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(_("key starts with"), max_length=12, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.user}, {self.tenant})"

    @staticmethod
    def generate_key() -> str:
        return ApiToken.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ThrottleWindow(models.Model):
    """Hits of one throttle key in one fixed time window (embedded profile; Redis otherwise).

    One ``INSERT … ON CONFLICT … RETURNING`` per check keeps it to a single round trip and
    exact across processes. Old windows are pruned by a periodic task.
    """

    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField()
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="throttle_window_unique")]
        indexes = [models.Index(fields=["window_start"])]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.hits}"


class Heartbeat(models.Model):
    """Last sign of life of a background process (``beat`` via the worker, …)."""

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField(default=timezone.now)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%H:%M:%S}"
