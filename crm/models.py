from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from morvo.tenancy import TenantScopedModel


class Contact(TenantScopedModel):
    """A customer of the tenant (the CRM grows around this)."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    language = models.CharField(_("language"), max_length=2, default="ar")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "email"])]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"#{self.pk}"


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
