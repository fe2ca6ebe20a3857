from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from crm import services
from crm.api.serializers import (
    OrderSerializer,
    ProductDailyStatSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
    SentimentMentionSerializer,
)
from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo.api.views import TenantReadOnlyViewSet


# Choice filters on a foreign key need the request's tenant: a queryset built with the
# FilterSet class (at import, no tenant active) refuses to run, and the lookup was a 500.
def _request_tenant_products(request: Request) -> QuerySet[Product]:
    return Product.objects.for_tenant(request.tenant)  # type: ignore[attr-defined]


def _request_tenant_contacts(request: Request) -> QuerySet[Contact]:
    return Contact.objects.for_tenant(request.tenant)  # type: ignore[attr-defined]


class ProductFilter(django_filters.FilterSet):
    # Strict: "maybe" is a 400, not a silently ignored filter.
    in_stock = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true", method="filter_in_stock"
    )
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")

    class Meta:
        model = Product
        fields = ["category", "status", "sku", "currency"]

    def filter_in_stock(self, queryset: QuerySet[Product], name: str, value: bool) -> QuerySet[Product]:
        condition = Q(stock_quantity__gt=0)
        return queryset.filter(condition) if value else queryset.exclude(condition)


class ProductViewSet(mixins.UpdateModelMixin, TenantReadOnlyViewSet):
    """The tenant's catalogue. ``PATCH`` changes stock, price or status (owners and admins)."""

    model = Product
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ["sku", "name_ar", "name_en", "category"]
    ordering_fields = ["price", "stock_quantity", "name_en", "created_at"]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(request=ProductUpdateSerializer, responses=ProductSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        product = self.get_object()  # 404 for another tenant's product
        serializer = ProductUpdateSerializer(product, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(self.tenant, product.pk, **serializer.validated_data)
        return Response(ProductSerializer(product).data)


class OrderFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    customer = django_filters.ModelChoiceFilter(queryset=_request_tenant_contacts)

    class Meta:
        model = Order
        fields = ["status", "customer", "currency", "payment_method"]


class OrderViewSet(TenantReadOnlyViewSet):
    model = Order
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    search_fields = ["number", "customer_name"]
    ordering_fields = ["created_at", "total"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation: no tenant (see the base)
            return queryset
        items = OrderItem.objects.for_tenant(self.tenant).select_related("product")
        return queryset.select_related("customer").prefetch_related(Prefetch("items", queryset=items))


class ProductDailyStatFilter(django_filters.FilterSet):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    product = django_filters.ModelChoiceFilter(queryset=_request_tenant_products)

    class Meta:
        model = ProductDailyStat
        fields = ["product", "date"]


class ProductDailyStatViewSet(TenantReadOnlyViewSet):
    model = ProductDailyStat
    serializer_class = ProductDailyStatSerializer
    filterset_class = ProductDailyStatFilter
    ordering_fields = ["date", "views", "units_sold", "revenue"]


class SentimentMentionViewSet(TenantReadOnlyViewSet):
    model = SentimentMention
    serializer_class = SentimentMentionSerializer
    filterset_fields = ["label", "platform", "source", "product"]
    search_fields = ["text"]
    ordering_fields = ["created_at", "score"]
