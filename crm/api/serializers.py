from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.models import Conversation
from crm.models import (
    Appointment,
    Contact,
    ContactAttributeDefinition,
    ContactIdentity,
    FollowUp,
    Label,
    LeadQualification,
    Note,
    Order,
    OrderItem,
    Product,
    ProductDailyStat,
    Segment,
    SentimentMention,
    StockAlert,
)
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


# --- CRM ------------------------------------------------------------------------------------


class TenantRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """An id of one of the request's tenant's rows: another tenant's id is "does not exist".
    (A queryset given at class creation would be built with no tenant, and refuse to run.)"""

    def __init__(self, *, model: Any, **kwargs: Any) -> None:
        self.related_model = model
        kwargs.setdefault("queryset", None if kwargs.get("read_only") else model.objects.all_tenants().none())
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.related_model.objects.for_tenant(self.context["request"].tenant)


class MemberField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A user id that must belong to a member of the request's tenant."""

    def __init__(self, **kwargs: Any) -> None:
        from django.contrib.auth import get_user_model

        kwargs.setdefault("queryset", get_user_model().objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(memberships__tenant=self.context["request"].tenant)


class ContactIdentitySerializer(CachedFieldsModelSerializer):
    class Meta:
        model = ContactIdentity
        fields = ["id", "channel_type", "external_id", "created_at"]


class ContactSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    identities = ContactIdentitySerializer(many=True, read_only=True)
    labels = serializers.ListField(child=serializers.CharField(max_length=50), max_length=50, required=False)
    attributes = serializers.DictField(required=False)

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "email",
            "phone",
            "language",
            "attributes",
            "labels",
            "lifecycle_stage",
            "blocked",
            "lead_score",
            "last_activity_at",
            "identities",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "lead_score", "last_activity_at", "identities", "created_at", "updated_at"]
        extra_kwargs = {"phone": {"help_text": "Any format; stored in E.164 (+966501234567)."}}


class ContactIdentityCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    channel_type = serializers.CharField(max_length=12)
    external_id = serializers.CharField(max_length=200)


class LabelSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color", "description", "created_at"]
        read_only_fields = ["id", "created_at"]


class ContactAttributeDefinitionSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    class Meta:
        model = ContactAttributeDefinition
        fields = ["id", "key", "label", "type", "choices", "created_at"]
        read_only_fields = ["id", "created_at"]


class TagSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    labels = serializers.ListField(child=serializers.CharField(max_length=50), min_length=1, max_length=50)


class NoteSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    author_email = serializers.EmailField(source="author.email", read_only=True, default="")

    class Meta:
        model = Note
        fields = ["id", "content", "author", "author_email", "created_at"]
        read_only_fields = ["id", "author", "author_email", "created_at"]


class LeadQualificationSerializer(CachedFieldsModelSerializer):
    class Meta:
        model = LeadQualification
        fields = ["id", "contact", "scores", "score", "fields", "labels", "source", "created_at"]


class SegmentSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    definition = serializers.DictField(
        required=False,
        help_text="Conditions, combined with AND: labels_all, labels_any, labels_none, lifecycle_stages, "
        "languages, channel_types (lists); min_score, max_score, active_within_days, inactive_for_days "
        "(numbers); attributes (object, equality); blocked (boolean).",
    )
    contact_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "definition", "contact_count", "created_at"]
        read_only_fields = ["id", "contact_count", "created_at"]


class FollowUpSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    contact = TenantRelatedField(model=Contact)
    conversation = TenantRelatedField(model=Conversation, required=False, allow_null=True)
    assignee = MemberField(required=False, allow_null=True)

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "contact",
            "conversation",
            "assignee",
            "due_at",
            "reason",
            "status",
            "reminded_at",
            "completed_at",
            "created_at",
        ]
        read_only_fields = ["id", "reminded_at", "completed_at", "created_at"]


class AppointmentSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    duration_minutes = serializers.IntegerField(min_value=5, max_value=480, default=60, write_only=True)
    contact = TenantRelatedField(model=Contact, required=False, allow_null=True)
    conversation = TenantRelatedField(model=Conversation, required=False, allow_null=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "contact",
            "conversation",
            "service",
            "start",
            "end",
            "duration_minutes",
            "status",
            "notes",
            "created_at",
        ]
        read_only_fields = ["id", "end", "created_at"]


class SlotsSerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    slots = serializers.ListField(child=serializers.DateTimeField())


class StockAlertSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    product_sku = serializers.CharField(source="product.sku", read_only=True)
    contact_name = serializers.CharField(source="contact.name", read_only=True)
    context = serializers.DictField(required=False)  # type: ignore[assignment]  # a field, popped by the metaclass
    contact = TenantRelatedField(model=Contact)
    product = TenantRelatedField(model=Product)
    conversation = TenantRelatedField(model=Conversation, required=False, allow_null=True)

    class Meta:
        model = StockAlert
        fields = [
            "id",
            "contact",
            "contact_name",
            "product",
            "product_sku",
            "conversation",
            "channel_type",
            "message_text",
            "context",
            "status",
            "status_reason",
            "created_at",
            "expires_at",
            "notified_at",
        ]
        read_only_fields = [
            "id",
            "contact_name",
            "product_sku",
            "status",
            "status_reason",
            "created_at",
            "expires_at",
            "notified_at",
        ]


class StockAlertQueueSerializer(serializers.Serializer[Any]):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    stock_quantity = serializers.IntegerField()
    pending = serializers.IntegerField()


class StockAlertNotifySerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    product = serializers.IntegerField()


class ImportResultSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
