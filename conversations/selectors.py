from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from conversations.models import Conversation, Message
from morvo.models import Tenant


def conversation_has_message() -> Exists:
    """True for a conversation (the outer query's row) holding at least one message of any
    role. Correlated on the conversation's id, whose row the outer query already scoped to a
    tenant, so the subquery reads across tenants on purpose (one query, no N+1)."""
    return Exists(Message.objects.all_tenants().filter(conversation=OuterRef("pk")))


def conversations_listed_for_operators(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Narrow ``conversations`` to what operators list and count: customer conversations
    someone wrote in (a message of any role). The public chat page opens a conversation for
    every visit, so crawlers, link previews and visitors who never write would otherwise fill
    the queue. Companion conversations pass unchanged (their owner lists their own).

    Only for lists, counts and live updates: a conversation opened by id (REST detail, the
    admin's conversation page) is reachable while still empty."""
    return conversations.filter(Q(kind=Conversation.Kind.COMPANION) | Q(conversation_has_message()))


def conversation_for_staff(tenant: Tenant, conversation_id: int) -> Conversation | None:
    return Conversation.objects.for_tenant(tenant).filter(pk=conversation_id).first()


def conversation_for_visitor(conversation_id: int, visitor_id: str) -> Conversation | None:
    """A visitor reaches only their own conversation, whatever tenant it belongs to."""
    if not visitor_id:
        return None
    return (
        Conversation.objects.all_tenants()
        .select_related("tenant")
        .filter(pk=conversation_id, visitor_id=visitor_id, kind=Conversation.Kind.CUSTOMER)
        .first()
    )


def visitor_conversation_latest(tenant: Tenant, visitor_id: str) -> Conversation | None:
    """The visitor's latest conversation with this tenant that is not resolved."""
    return (
        Conversation.objects.for_tenant(tenant)
        .filter(kind=Conversation.Kind.CUSTOMER, visitor_id=visitor_id)
        .exclude(status=Conversation.Status.RESOLVED)
        .select_related("contact")
        .order_by("-last_activity_at", "-id")
        .first()
    )


def messages_after(
    tenant: Tenant, conversation: Conversation, after_id: int, *, include_notes: bool, limit: int = 500
) -> QuerySet[Message]:
    messages = Message.objects.for_tenant(tenant).filter(conversation=conversation, id__gt=after_id)
    if not include_notes:
        messages = messages.filter(role__in=Message.PUBLIC_ROLES)
    return messages.select_related("author").order_by("id")[:limit]


def message_list_wire(messages: Any) -> list[dict[str, Any]]:
    from conversations.realtime import message_to_wire

    return [message_to_wire(message) for message in messages]
