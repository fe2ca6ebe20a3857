from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from conversations.models import Conversation, Message
from morvo.models import Tenant


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
