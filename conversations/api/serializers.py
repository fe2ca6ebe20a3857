"""Serializers of the conversations API: parse and shape only; the rules live in
``conversations.services`` (message content is checked by ``services.content_clean``, the
same check the websocket uses)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations import services
from conversations.models import Conversation, Inbox, Message
from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin


def _request_tenant(serializer_field: serializers.Field) -> Any:  # type: ignore[type-arg]
    request = serializer_field.context.get("request")
    return getattr(request, "tenant", None) if request is not None else None


class TenantInboxField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """One of the caller's tenant's inboxes where customers write (not the companion's).
    Another tenant's inbox is refused exactly as a missing one is."""

    def get_queryset(self) -> QuerySet[Inbox]:
        tenant = _request_tenant(self)
        if tenant is None:
            return Inbox.objects.all_tenants().none()
        return Inbox.objects.for_tenant(tenant).exclude(channel_type=Inbox.ChannelType.COMPANION)


class TenantMemberField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A user with a membership in the caller's tenant. Anyone else (another tenant's
    member, a missing id) gets the same answer, so ids of other tenants' users leak nothing."""

    default_error_messages = {
        "does_not_exist": "The assignee is not a member of this business.",
    }

    def get_queryset(self) -> QuerySet[Any]:
        user_model = get_user_model()
        tenant = _request_tenant(self)
        if tenant is None:
            return user_model.objects.none()
        return user_model.objects.filter(memberships__tenant=tenant)


def _clean_content(value: str) -> str:
    try:
        return services.content_clean(value)
    except services.ChatError as error:
        raise serializers.ValidationError(str(error), code=error.code) from error


class MessageContentField(serializers.CharField):
    """1–4,000 characters after trimming (``services.content_clean``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)  # a blank message gets the service's own message
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return _clean_content(super().to_internal_value(data))


class LabelsField(serializers.ListField):  # type: ignore[type-arg]
    """A list of labels. The child is a class attribute, so every instance gets its own copy:
    CachedFieldsModelSerializer rebuilds fields from their constructor arguments, and a
    ``child=`` argument (DRF's default for an ArrayField) would be one child bound twice."""

    child = serializers.CharField(max_length=50)


# "status" names a different choice set in the store's serializers; drf-spectacular names an
# enum used by two components after its field alone, and warns on the clash. The conversation's
# status enum is therefore described once (in Conversation, as ConversationStatusEnum) and the
# PATCH body refers to it.
@extend_schema_field({"allOf": [{"$ref": "#/components/schemas/ConversationStatusEnum"}]})
class ConversationStatusField(serializers.ChoiceField):
    pass


class ConversationSerializer(CachedFieldsModelSerializer):
    labels = LabelsField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "kind",
            "inbox",
            "contact",
            "staff_user",
            "title",
            "status",
            "priority",
            "handled_by",
            "assignee",
            "labels",
            "language",
            "snoozed_until",
            "unread_for_agents",
            "unread_for_user",
            "last_activity_at",
            "created_at",
        ]
        read_only_fields = fields


class ConversationCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    """``POST /conversations``: a customer conversation in one of the tenant's inboxes, or a
    companion conversation of the caller. ``message``, when given, is the first user message."""

    kind = serializers.ChoiceField(choices=Conversation.Kind.choices)
    inbox = TenantInboxField(
        queryset=Inbox.objects.all_tenants(),
        required=False,
        allow_null=True,
        help_text="Required for a customer conversation; a companion conversation has none to choose.",
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    message = MessageContentField(required=False, help_text="Posted as the first user message (runs a turn).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        inbox = attrs.get("inbox")
        if attrs["kind"] == Conversation.Kind.CUSTOMER and inbox is None:
            raise serializers.ValidationError({"inbox": ["A customer conversation needs an inbox."]}, code="required")
        if attrs["kind"] == Conversation.Kind.COMPANION and inbox is not None:
            raise serializers.ValidationError({"inbox": ["A companion conversation has no inbox to choose."]})
        return attrs


class ConversationUpdateSerializer(RejectUnknownFieldsMixin, CachedFieldsModelSerializer):
    """What ``PATCH /conversations/{id}`` may change."""

    status = ConversationStatusField(choices=Conversation.Status.choices, required=False)
    assignee = TenantMemberField(queryset=get_user_model().objects.all(), required=False, allow_null=True)
    labels = LabelsField(required=False, max_length=50)

    class Meta:
        model = Conversation
        fields = ["title", "status", "priority", "assignee", "labels", "snoozed_until"]


class MessageSerializer(CachedFieldsModelSerializer):
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "role",
            "content",
            "content_type",
            "metadata",
            "client_message_id",
            "reply_to",
            "author",
            "delivery_status",
            "created_at",
        ]
        read_only_fields = fields


class MessageCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    """``role``: ``user`` (the conversation's user or customer speaks; the AI answers) or
    ``agent`` (a person answers the customer)."""

    ROLES = [(Message.Role.USER.value, Message.Role.USER.label), (Message.Role.AGENT.value, Message.Role.AGENT.label)]

    content = MessageContentField()
    client_message_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, help_text="Makes the post idempotent."
    )
    role = serializers.ChoiceField(choices=ROLES, default=Message.Role.USER.value)


class NoteCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    content = MessageContentField()


CHANNEL_INBOX_TYPES = ("whatsapp", "telegram", "instagram", "sms", "email", "chatwoot")


class InboxSerializer(CachedFieldsModelSerializer):
    """An inbox; secrets in its config are masked, and ``webhook_url`` is where the provider
    posts (it carries the inbox's token: treat it as a secret)."""

    config = serializers.SerializerMethodField()
    webhook_url = serializers.SerializerMethodField()

    class Meta:
        model = Inbox
        fields = ["id", "name", "channel_type", "is_active", "config", "webhook_url", "created_at"]
        read_only_fields = fields

    def get_config(self, inbox: Inbox) -> dict[str, Any]:
        from conversations.channels.base import config_masked

        return config_masked(inbox.config)

    def get_webhook_url(self, inbox: Inbox) -> str | None:
        from django.urls import reverse

        if inbox.channel_type not in CHANNEL_INBOX_TYPES:
            return None
        path = reverse("channel-webhook", args=[inbox.channel_type, inbox.secret])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class InboxCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    """``POST /inboxes``: a channel inbox and its provider config (which keys each channel
    needs is in docs/channels.md)."""

    channel_type = serializers.ChoiceField(choices=Inbox.ChannelType.choices)
    name = serializers.CharField(max_length=120)
    config = serializers.DictField(help_text="The provider's settings: tokens, ids, secrets, base URLs.")

    def validate_channel_type(self, value: str) -> str:
        if value not in CHANNEL_INBOX_TYPES:
            message = gettext("Inboxes made here are channels: %(types)s.") % {"types": ", ".join(CHANNEL_INBOX_TYPES)}
            raise serializers.ValidationError(message, code="invalid_choice")
        return value
