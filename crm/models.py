from __future__ import annotations

from datetime import time
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from morvo.fields import EncryptedCharField
from morvo.tenancy import TenantScopedModel


class Label(TenantScopedModel):
    """A label shared by contacts and conversations. Both keep label *names* (lower-case,
    trimmed), so a label is keyed by its name within a tenant."""

    name = models.CharField(_("name"), max_length=50)
    color = models.CharField(_("colour"), max_length=7, default="#64748b")
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="label_unique_tenant_name")]
        verbose_name = _("label")
        verbose_name_plural = _("labels")

    def __str__(self) -> str:
        return self.name


class ContactAttributeDefinition(TenantScopedModel):
    """A typed custom attribute the tenant keeps on its contacts (``size``, ``vip_since``…)."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        BOOLEAN = "boolean", _("Yes / no")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")

    key = models.SlugField(_("key"), max_length=50)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default=Type.TEXT)
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True, verbose_name=_("choices"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["key", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="attribute_unique_tenant_key")]
        verbose_name = _("contact attribute")
        verbose_name_plural = _("contact attributes")

    def __str__(self) -> str:
        return self.key


class Contact(TenantScopedModel):
    """A customer of the tenant, one person across channels (see :class:`ContactIdentity`)."""

    class LifecycleStage(models.TextChoices):
        VISITOR = "visitor", _("Visitor")
        LEAD = "lead", _("Lead")
        QUALIFIED = "qualified", _("Qualified lead")
        CUSTOMER = "customer", _("Customer")
        CHURNED = "churned", _("Churned")

    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    # E.164 (``+966501234567``), normalised by crm.services.phone_normalize.
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    language = models.CharField(_("language"), max_length=2, default="ar")
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    labels = ArrayField(models.CharField(max_length=50), default=list, blank=True, verbose_name=_("labels"))
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=10, choices=LifecycleStage.choices, default=LifecycleStage.LEAD
    )
    blocked = models.BooleanField(_("blocked"), default=False)
    # The latest lead score (0-100) from the newest LeadQualification; history lives there.
    lead_score = models.PositiveSmallIntegerField(_("lead score"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "email"]),
            models.Index(fields=["tenant", "phone"]),
            GinIndex(fields=["labels"], name="contact_labels_gin"),
        ]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"#{self.pk}"


class ContactIdentity(TenantScopedModel):
    """How a contact is known on one channel (a WhatsApp number, a Telegram chat id, a web
    visitor id). Unique per tenant, so the same sender is always the same contact."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    channel_type = models.CharField(_("channel"), max_length=12)
    external_id = models.CharField(_("external id"), max_length=200)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["channel_type", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel_type", "external_id"], name="contact_identity_unique_per_tenant"
            )
        ]
        verbose_name = _("contact identity")
        verbose_name_plural = _("contact identities")

    def __str__(self) -> str:
        return f"{self.channel_type}:{self.external_id}"


class Note(TenantScopedModel):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    content = models.TextField(_("content"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("note")
        verbose_name_plural = _("notes")

    def __str__(self) -> str:
        return self.content[:40]


class LeadQualification(TenantScopedModel):
    """One qualification of a contact (written by the extraction agent or a person). Rows are
    never changed: together they are the contact's score history."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="qualifications")
    scores = models.JSONField(_("scores"), default=dict)
    score = models.PositiveSmallIntegerField(_("score"))
    fields = models.JSONField(_("fields"), default=dict, blank=True)
    labels = ArrayField(models.CharField(max_length=50), default=list, blank=True, verbose_name=_("labels"))
    source = models.CharField(_("source"), max_length=30, default="extraction")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contact", "created_at"])]
        verbose_name = _("lead qualification")
        verbose_name_plural = _("lead qualifications")

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.score}"


class Segment(TenantScopedModel):
    """A saved filter over contacts, evaluated in SQL (crm.selectors.segment_contacts).

    ``definition`` keys (all optional, combined with AND): ``labels_all``, ``labels_any``,
    ``labels_none`` (label names), ``lifecycle_stages``, ``languages``, ``min_score``,
    ``max_score``, ``attributes`` ({key: value}, equality), ``active_within_days``,
    ``inactive_for_days``, ``channel_types``, ``blocked`` (bool; blocked contacts are left out
    unless it is true).
    """

    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    definition = models.JSONField(_("definition"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_unique_tenant_name")]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class FollowUp(TenantScopedModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="follow_ups")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_at = models.DateTimeField(_("due"))
    reason = models.CharField(_("reason"), max_length=300)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["tenant", "status", "due_at"])]
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")

    def __str__(self) -> str:
        return self.reason[:40]


class BusinessHours(TenantScopedModel):
    """When the tenant takes appointments, per weekday (0 = Monday) in the tenant's time zone.
    A tenant with no rows uses :data:`DEFAULT_BUSINESS_HOURS`."""

    weekday = models.PositiveSmallIntegerField(_("weekday"), validators=[MaxValueValidator(6)])
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        ordering = ["weekday", "opens"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "weekday"], name="business_hours_one_per_weekday"),
            models.CheckConstraint(condition=models.Q(closes__gt=models.F("opens")), name="business_hours_order"),
        ]
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")

    def __str__(self) -> str:
        return f"{self.weekday}: {self.opens}-{self.closes}"


# Saturday to Thursday 10:00-22:00, Friday 16:00-22:00 (after the Friday prayer).
DEFAULT_BUSINESS_HOURS: dict[int, tuple[time, time]] = {
    **{weekday: (time(10), time(22)) for weekday in (0, 1, 2, 3, 5, 6)},
    4: (time(16), time(22)),
}


class Appointment(TenantScopedModel):
    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        COMPLETED = "completed", _("Completed")
        NO_SHOW = "no_show", _("No-show")

    ACTIVE_STATUSES = (Status.BOOKED, Status.CONFIRMED)

    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    service = models.CharField(_("service"), max_length=120)
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.BOOKED)
    notes = models.TextField(_("notes"), blank=True)
    reminded_24h_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_1h_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]
        indexes = [models.Index(fields=["tenant", "start"])]
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="appointment_order")]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")

    def __str__(self) -> str:
        return f"{self.service} {self.start:%Y-%m-%d %H:%M}"


class Product(TenantScopedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DRAFT = "draft", _("Draft")
        ARCHIVED = "archived", _("Archived")

    sku = models.CharField(_("SKU"), max_length=64)
    name_ar = models.CharField(_("name (Arabic)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True)
    price = models.DecimalField(
        _("price"), max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(_("currency"), max_length=3, default="SAR")
    stock_quantity = models.IntegerField(_("stock"), default=0, validators=[MinValueValidator(0)])
    image_url = models.URLField(_("image URL"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name_en", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_unique_tenant_sku"),
            models.CheckConstraint(condition=models.Q(stock_quantity__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_not_negative"),
        ]
        indexes = [models.Index(fields=["tenant", "category"]), models.Index(fields=["tenant", "stock_quantity"])]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return f"{self.name_ar} / {self.name_en}" if self.name_en else self.name_ar

    @property
    def in_stock(self) -> bool:
        return self.stock_quantity > 0


class Order(TenantScopedModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    # Orders in these states count as revenue.
    REVENUE_STATUSES = (Status.PAID, Status.SHIPPED, Status.DELIVERED)

    number = models.CharField(_("order number"), max_length=32)
    customer = models.ForeignKey(
        Contact, verbose_name=_("customer"), on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    customer_name = models.CharField(_("customer name"), max_length=200, blank=True)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(_("currency"), max_length=3, default="SAR")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    payment_method = models.CharField(_("payment method"), max_length=30, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="order_unique_tenant_number")]
        indexes = [models.Index(fields=["tenant", "created_at"])]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return self.number


class OrderItem(TenantScopedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # RESTRICT, not PROTECT: a product with sales cannot be deleted on its own, but deleting
    # the tenant (which deletes the order items in the same cascade) works.
    product = models.ForeignKey(Product, on_delete=models.RESTRICT, related_name="order_items")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        verbose_name = _("order item")
        verbose_name_plural = _("order items")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class ProductDailyStat(TenantScopedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="daily_stats")
    date = models.DateField(_("date"))
    views = models.PositiveIntegerField(_("views"), default=0)
    units_sold = models.PositiveIntegerField(_("units sold"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["-date", "product_id"]
        constraints = [models.UniqueConstraint(fields=["product", "date"], name="product_stat_unique_day")]
        indexes = [models.Index(fields=["tenant", "date"])]
        verbose_name = _("daily product stat")
        verbose_name_plural = _("daily product stats")

    def __str__(self) -> str:
        return f"{self.product_id} {self.date}"


class SentimentMention(TenantScopedModel):
    class Label(models.TextChoices):
        POSITIVE = "positive", _("Positive")
        NEUTRAL = "neutral", _("Neutral")
        NEGATIVE = "negative", _("Negative")

    source = models.CharField(_("source"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    text = models.TextField(_("text"))
    score = models.DecimalField(
        _("score"),
        max_digits=4,
        decimal_places=3,
        validators=[MinValueValidator(Decimal("-1")), MaxValueValidator(Decimal("1"))],
    )
    label = models.CharField(_("label"), max_length=10, choices=Label.choices)
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="mentions")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=-1, score__lte=1), name="mention_score_range"),
        ]
        verbose_name = _("sentiment mention")
        verbose_name_plural = _("sentiment mentions")

    def __str__(self) -> str:
        return f"{self.platform}: {self.text[:40]}"


class StockAlert(TenantScopedModel):
    """ "Tell me when it is back": one pending alert per contact and product. When stock
    returns every pending alert of the product is notified exactly once, on its channel."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        NOTIFIED = "notified", _("Notified")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        UNDELIVERABLE = "undeliverable", _("Undeliverable")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="stock_alerts")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_alerts")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    channel_type = models.CharField(_("channel"), max_length=12, default="web")
    message_text = models.TextField(_("customer message"), blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=13, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    notified_at = models.DateTimeField(_("notified"), null=True, blank=True)
    # The id of the conversations Message that carried the notification.
    notification_message_id = models.BigIntegerField(null=True, blank=True, editable=False)
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contact", "product"],
                condition=models.Q(status="pending"),
                name="stock_alert_one_pending_per_contact_product",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "product", "status"]),
            models.Index(fields=["status", "expires_at"]),
        ]
        verbose_name = _("stock alert")
        verbose_name_plural = _("stock alerts")

    def __str__(self) -> str:
        return f"{self.contact_id} → {self.product_id} ({self.status})"


class StockAlertQueue(Product):
    """The admin's stock-alert queue: products with customers waiting, counted per product."""

    class Meta:
        proxy = True
        verbose_name = _("stock-alert queue")
        verbose_name_plural = _("stock-alert queue")


class StoreConnection(TenantScopedModel):
    """A connection to the tenant's online store (WooCommerce REST API v3): products, stock and
    orders are synced from it (crm.connectors)."""

    class Kind(models.TextChoices):
        WOOCOMMERCE = "woocommerce", _("WooCommerce")

    kind = models.CharField(_("platform"), max_length=20, choices=Kind.choices, default=Kind.WOOCOMMERCE)
    name = models.CharField(_("name"), max_length=120)
    base_url = models.URLField(_("store address"), help_text=_("For example https://shop.example.com"))
    consumer_key = models.CharField(_("consumer key"), max_length=200)
    consumer_secret = EncryptedCharField(_("consumer secret"), max_length=600)
    is_active = models.BooleanField(_("active"), default=True)
    last_synced_at = models.DateTimeField(_("last sync"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="store_connection_unique_name")]
        verbose_name = _("store connection")
        verbose_name_plural = _("store connections")

    def __str__(self) -> str:
        return self.name
