from __future__ import annotations

from rest_framework import serializers

from crm.models import Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin


class ProductSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name_ar",
            "name_en",
            "description",
            "category",
            "price",
            "currency",
            "stock_quantity",
            "in_stock",
            "image_url",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in ("stock_quantity", "price", "status")]


class ProductUpdateSerializer(ProductSerializer):
    """What ``PATCH /products/{id}`` may change."""

    stock_quantity = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)


class OrderItemSerializer(CachedFieldsModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    name_ar = serializers.CharField(source="product.name_ar", read_only=True)
    name_en = serializers.CharField(source="product.name_en", read_only=True)

    class Meta:
        model = OrderItem
        fields = ["id", "product", "sku", "name_ar", "name_en", "quantity", "unit_price"]


class OrderSerializer(CachedFieldsModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)
    customer_email = serializers.EmailField(source="customer.email", read_only=True, default="")

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "customer",
            "customer_name",
            "customer_email",
            "total",
            "currency",
            "status",
            "payment_method",
            "created_at",
            "items",
        ]


class ProductDailyStatSerializer(CachedFieldsModelSerializer):
    class Meta:
        model = ProductDailyStat
        fields = ["id", "product", "date", "views", "units_sold", "revenue"]


class SentimentMentionSerializer(CachedFieldsModelSerializer):
    class Meta:
        model = SentimentMention
        fields = ["id", "source", "platform", "text", "score", "label", "product", "created_at"]
