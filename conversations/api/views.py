"""The conversations REST API: the inbox and the companion for integrators and staff tools.

Views parse, call ``conversations.services`` and serialize. Every lookup goes through
``get_queryset`` (the token's tenant; a companion conversation only for the staff member it
belongs to), so another tenant's conversation, or a colleague's companion chat, is the same
404 as a missing one, and the lookup comes before any validation.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from conversations import selectors, services
from conversations.api.filters import ConversationFilter, MessageFilter
from conversations.api.serializers import (
    ConversationCreateSerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    InboxCreateSerializer,
    InboxSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    NoteCreateSerializer,
)
from conversations.models import Conversation, Inbox, Message
from morvo import services as core_services
from morvo.api.views import TenantModelViewSet
from morvo.models import Membership

# Viewers read; agents work the inbox (reply, take over, note, triage) with owners and admins.
INBOX_WRITE_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.AGENT})
# The websocket's limit (conversations.consumers), per token and conversation here.
MESSAGES_PER_MINUTE = 20

# Which request field a refused change is about, by ChatError code.
CHAT_ERROR_FIELDS = {
    "empty_content": "content",
    "content_too_long": "content",
    "invalid_content": "content",
    "invalid_assignee": "assignee",
    "invalid_labels": "labels",
    "invalid_snooze": "snoozed_until",
}


def chat_error_response(error: services.ChatError) -> exceptions.ValidationError:
    """A refusal of the service as the API's 400, on its field where it has one."""
    field = CHAT_ERROR_FIELDS.get(error.code)
    if field is None:
        return exceptions.ValidationError(str(error), code=error.code)
    return exceptions.ValidationError({field: [str(error)]}, code=error.code)


def visible_conversations(tenant: Any, user: Any) -> QuerySet[Conversation]:
    """The tenant's customer conversations, and the caller's own companion conversations."""
    return Conversation.objects.for_tenant(tenant).filter(
        Q(kind=Conversation.Kind.CUSTOMER) | Q(kind=Conversation.Kind.COMPANION, staff_user=user)
    )


ID_PARAMETER = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The conversation's id.")
NOT_FOUND = OpenApiResponse(description="No such conversation (or another tenant's).")
INVALID = OpenApiResponse(description="Invalid input, in the API's error format.")


@extend_schema_view(
    list=extend_schema(
        summary="List conversations",
        description="Urgent and high priority first, then the most recent activity. "
        "A customer conversation is listed once it has a message (an empty one is still reached by its id). "
        "Companion conversations are listed only to the staff member they belong to.",
    ),
    retrieve=extend_schema(summary="A conversation", responses={200: ConversationSerializer, 404: NOT_FOUND}),
)
class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantModelViewSet):
    """The tenant's conversations: list, open, triage (PATCH), take over and hand back, notes."""

    model = Conversation
    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter
    search_fields = ["title"]
    ordering_fields = ["last_activity_at", "created_at"]
    write_roles = INBOX_WRITE_ROLES
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no tenant (see the base)
            return super().get_queryset()
        rank = Case(
            *(When(priority=priority, then=Value(value)) for priority, value in Conversation.PRIORITY_RANK.items()),
            default=Value(len(Conversation.PRIORITY_RANK)),
            output_field=IntegerField(),
        )
        conversations = visible_conversations(self.tenant, self.request.user)
        if self.action == "list":
            # Listed once someone wrote in; opened by id (detail, actions) even while empty.
            conversations = selectors.conversations_listed_for_operators(conversations)
        return conversations.annotate(priority_rank=rank).order_by("priority_rank", "-last_activity_at", "-id")

    def _fresh(self, conversation_id: int) -> Conversation:
        """Re-read after a service changed the row (its counters are updated in SQL)."""
        return self.get_queryset().get(pk=conversation_id)  # type: ignore[no-any-return]

    @extend_schema(
        summary="Open a conversation",
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer, 400: INVALID},
    )
    def create(self, request: Request) -> Response:
        serializer = ConversationCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            if data["kind"] == Conversation.Kind.COMPANION:
                conversation = services.conversation_start_companion(self.tenant, request.user, data["title"])
            else:
                conversation = services.conversation_start_customer(self.tenant, data["inbox"], data["title"])
            if data.get("message") is not None:
                services.message_post(
                    self.tenant,
                    conversation,
                    content=data["message"],
                    role=Message.Role.USER,
                    author=request.user if conversation.kind == Conversation.Kind.COMPANION else None,
                )
        return Response(ConversationSerializer(self._fresh(conversation.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change status, priority, assignee, labels or the snooze time",
        request=ConversationUpdateSerializer,
        responses={200: ConversationSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()  # 404 first: another tenant cannot probe ids through 400s
        serializer = ConversationUpdateSerializer(
            conversation, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        try:
            services.conversation_update(self.tenant, conversation.pk, **serializer.validated_data)
        except services.ChatError as error:
            raise chat_error_response(error) from error
        return Response(ConversationSerializer(self._fresh(conversation.pk)).data)

    @extend_schema(
        summary="Take the conversation over (the AI stops answering)",
        request=None,
        responses={200: ConversationSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="take-over", filter_backends=[])
    def take_over(self, request: Request, pk: str | None = None) -> Response:
        conversation = self._customer_conversation()
        services.conversation_take_over(self.tenant, conversation.pk, request.user)
        return Response(ConversationSerializer(self._fresh(conversation.pk)).data)

    @extend_schema(
        summary="Hand the conversation back to the AI",
        request=None,
        responses={200: ConversationSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="hand-back", filter_backends=[])
    def hand_back(self, request: Request, pk: str | None = None) -> Response:
        conversation = self._customer_conversation()
        services.conversation_hand_back(self.tenant, conversation.pk)
        return Response(ConversationSerializer(self._fresh(conversation.pk)).data)

    @extend_schema(
        summary="Add a private note (staff only, never shown to the customer)",
        request=NoteCreateSerializer,
        responses={201: MessageSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def notes(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        serializer = NoteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            note = services.note_add(self.tenant, conversation, request.user, serializer.validated_data["content"])
        except services.ChatError as error:
            raise chat_error_response(error) from error
        return Response(MessageSerializer(note).data, status=status.HTTP_201_CREATED)

    def _customer_conversation(self) -> Conversation:
        conversation: Conversation = self.get_object()
        if conversation.kind != Conversation.Kind.CUSTOMER:
            # The companion is a staff member talking with Morvo: there is no one to take over from.
            raise exceptions.ValidationError({"kind": ["Only customer conversations are taken over and handed back."]})
        return conversation


class MessageCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(parameters=[ID_PARAMETER])
class MessageViewSet(mixins.ListModelMixin, TenantModelViewSet):
    """``/conversations/{id}/messages``: read in order (cursor pages), post as the user or as an agent."""

    model = Message
    serializer_class = MessageSerializer
    pagination_class = MessageCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = MessageFilter
    write_roles = INBOX_WRITE_ROLES
    http_method_names = ["get", "post", "head", "options"]

    conversation_kwarg: ClassVar[str] = "id"

    def conversation(self) -> Conversation:
        cached: Conversation | None = getattr(self, "_conversation", None)
        if cached is not None:
            return cached
        try:
            conversation_id = int(self.kwargs[self.conversation_kwarg])
        except (TypeError, ValueError) as error:
            raise exceptions.NotFound from error
        conversation = visible_conversations(self.tenant, self.request.user).filter(pk=conversation_id).first()
        if conversation is None:
            raise exceptions.NotFound
        self._conversation = conversation
        return conversation

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset()
        # Staff read everything, private notes included.
        return Message.objects.for_tenant(self.tenant).filter(conversation=self.conversation()).select_related("author")

    @extend_schema(
        summary="Messages of a conversation, oldest first",
        responses={200: MessageSerializer(many=True), 404: NOT_FOUND},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Post a message",
        description="`user`: the conversation's user (or customer) speaks, and the AI answers unless a "
        "person took the conversation over. `agent`: a person answers the customer. Idempotent on "
        "`client_message_id`: 201 when stored, 200 with the stored message when repeated. "
        f"At most {MESSAGES_PER_MINUTE} new messages a minute per token and conversation.",
        request=MessageCreateSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="Already stored under this client_message_id."),
            400: INVALID,
            404: NOT_FOUND,
            429: OpenApiResponse(description="More than 20 messages a minute."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.conversation()
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        role = data["role"]
        if role == Message.Role.AGENT and conversation.kind != Conversation.Kind.CUSTOMER:
            raise exceptions.ValidationError({"role": ["Agents answer customers: use role user in the companion."]})
        client_message_id = data.get("client_message_id")
        if client_message_id is not None:
            # A repeat is answered with the original, and never counted against the limit.
            existing = self.get_queryset().filter(client_message_id=client_message_id).first()
            if existing is not None:
                return Response(MessageSerializer(existing).data, status=status.HTTP_200_OK)
        self._count_against_limit(request, conversation)
        try:
            if role == Message.Role.AGENT:
                message, created = services.agent_reply(
                    self.tenant, conversation, request.user, data["content"], client_message_id=client_message_id
                )
            else:
                message, created = services.message_post(
                    self.tenant,
                    conversation,
                    content=data["content"],
                    role=Message.Role.USER,
                    client_message_id=client_message_id,
                    # In a customer conversation the caller relays the customer's words.
                    author=request.user if conversation.kind == Conversation.Kind.COMPANION else None,
                )
        except services.ChatError as error:
            raise chat_error_response(error) from error
        return Response(
            MessageSerializer(message).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def _count_against_limit(self, request: Request, conversation: Conversation) -> None:
        caller = f"t{request.auth.pk}" if getattr(request.auth, "pk", None) is not None else f"u{request.user.pk}"
        now = time.time()
        window = int(now // 60 * 60)
        if core_services.throttle_hit(f"chat-api:{caller}:c{conversation.pk}", window, 60) > MESSAGES_PER_MINUTE:
            raise exceptions.Throttled(wait=window + 60 - now)


INBOX_ID_PARAMETER = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The inbox's id.")


@extend_schema_view(
    list=extend_schema(summary="List inboxes", description="Secrets in each config are masked."),
    retrieve=extend_schema(
        summary="An inbox",
        parameters=[INBOX_ID_PARAMETER],
        responses={200: InboxSerializer, 404: OpenApiResponse(description="No such inbox (or another tenant's).")},
    ),
)
class InboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantModelViewSet):
    """The tenant's inboxes. Owners and admins create and remove channel inboxes; the
    response's ``webhook_url`` is what to give the provider. Other members are refused
    (403): the config and the webhook URL are credentials."""

    model = Inbox
    serializer_class = InboxSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        membership = getattr(request._request, "membership", None)
        if membership is None or membership.role not in Membership.MANAGING_ROLES:
            raise exceptions.PermissionDenied("Your role in this tenant cannot change this.")

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("name", "id")

    @extend_schema(
        summary="Create a channel inbox",
        request=InboxCreateSerializer,
        responses={201: InboxSerializer, 400: INVALID},
    )
    def create(self, request: Request) -> Response:
        serializer = InboxCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            inbox = services.inbox_create(
                self.tenant, channel_type=data["channel_type"], name=data["name"], config=data["config"]
            )
        except services.InboxConfigError as error:
            fields = {
                key if key in ("name", "channel_type") else f"config.{key}": [reason]
                for key, reason in error.problems.items()
            }
            raise exceptions.ValidationError(fields, code="invalid_config") from error
        return Response(
            InboxSerializer(inbox, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Remove an inbox",
        description="Deleted when it never had a conversation; otherwise deactivated (its webhooks stop).",
        parameters=[INBOX_ID_PARAMETER],
        responses={204: None, 404: OpenApiResponse(description="No such inbox (or another tenant's).")},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        inbox = self.get_object()
        services.inbox_delete(self.tenant, inbox.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
