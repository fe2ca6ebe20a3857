from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo.admin_mixins import TenantScopedInline, TenantScopedModelAdmin


@admin.register(Product)
class ProductAdmin(TenantScopedModelAdmin):
    list_display = ["sku", "name_ar", "name_en", "category", "price", "currency", "stock_quantity", "status"]
    list_filter = ["status", "category"]
    list_editable = ["stock_quantity"]
    search_fields = ["sku", "name_ar", "name_en", "category"]
    ordering = ["name_en"]


class OrderItemInline(TenantScopedInline):
    model = OrderItem
    fields = ["product", "quantity", "unit_price"]


@admin.register(Order)
class OrderAdmin(TenantScopedModelAdmin):
    list_display = ["number", "customer_name", "total", "currency", "status", "payment_method", "created_at"]
    list_filter = ["status", "payment_method", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["number", "customer_name"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline]
    ordering = ["-created_at"]


@admin.register(ProductDailyStat)
class ProductDailyStatAdmin(TenantScopedModelAdmin):
    list_display = ["date", "product", "views", "units_sold", "revenue"]
    list_filter = [("date", admin.DateFieldListFilter)]
    search_fields = ["product__sku", "product__name_ar", "product__name_en"]
    date_hierarchy = "date"
    list_select_related = ["product"]
    ordering = ["-date"]


@admin.register(SentimentMention)
class SentimentMentionAdmin(TenantScopedModelAdmin):
    list_display = ["platform", "source", "short_text", "score", "label", "created_at"]
    list_filter = ["label", "platform"]
    search_fields = ["text", "source"]
    ordering = ["-created_at"]

    @admin.display(description=_("text"))
    def short_text(self, obj: SentimentMention) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(Contact)
class ContactAdmin(TenantScopedModelAdmin):
    list_display = ["name", "email", "phone", "language", "created_at"]
    search_fields = ["name", "email", "phone"]
    ordering = ["-created_at"]
