"""Channel-layer groups of conversations and what is pushed to them.

Group names carry the tenant. Pushes are made after the transaction commits (callers use
``transaction.on_commit``), from synchronous code: a Celery worker, or a thread of the
web process (where ``async_to_sync`` runs them on the server's event loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from conversations.models import Conversation, Message
from conversations.selectors import conversations_listed_for_operators
from morvo.realtime import group_send_many

logger = logging.getLogger(__name__)


def conversation_group(tenant_id: int, conversation_id: int) -> str:
    return f"conv-{tenant_id}-{conversation_id}"


def inbox_group(tenant_id: int) -> str:
    """Every staff view of the tenant's conversation list (the operators' live queue)."""
    return f"inbox-{tenant_id}"


def conversation_to_wire(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "inbox": conversation.inbox_id,
        "title": conversation.title,
        "status": conversation.status,
        "priority": conversation.priority,
        "handled_by": conversation.handled_by,
        "assignee": conversation.assignee_id,
        "labels": list(conversation.labels),
        "language": conversation.language,
        "unread_for_agents": conversation.unread_for_agents,
        "last_activity_at": conversation.last_activity_at.isoformat(),
    }


def message_to_wire(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "content_type": message.content_type,
        "metadata": message.metadata,
        "client_message_id": message.client_message_id,
        "reply_to": message.reply_to_id,
        "author": getattr(message.author, "email", None) if message.author_id else None,
        "delivery_status": message.delivery_status,
        "created_at": message.created_at.isoformat(),
    }


class Gathered:
    """Pushes held back by :func:`gathered`, sent together by :meth:`flush`."""

    def __init__(self) -> None:
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.inbox: dict[int, dict[int, Conversation]] = {}
        self.then: list[Callable[[], None]] = []
        self.flushed_at = time.monotonic()

    def flush(self) -> None:
        """Send what is held: the conversations' frames in the order they were pushed, then
        each tenant's inbox updates (read fresh, one query per tenant). A failure is logged,
        not raised: the data is committed, and a page that missed a frame catches up when it
        reconnects. Then what waited for these pushes runs (see :func:`after_pushes`)."""
        sends, inbox, then = self.sends, self.inbox, self.then
        self.sends, self.inbox, self.then = [], {}, []
        self.flushed_at = time.monotonic()
        try:
            for conversations in inbox.values():
                sends.extend(_inbox_sends(list(conversations.values())))
            group_send_many(sends)
        except Exception:
            logger.exception("could not push %d realtime frames", len(sends))
        for callback in then:
            try:
                callback()
            except Exception:
                logger.exception("a callback after realtime pushes failed")


_local = threading.local()


def _gathering() -> Gathered | None:
    return getattr(_local, "gathered", None)


@contextmanager
def gathered() -> Iterator[Gathered]:
    """Hold this thread's pushes and send them together when the block ends (or on
    ``flush()``): for work that commits many small transactions in a row, such as a batch
    of webhook events, one channel-layer statement and one inbox query per flush instead of
    three per message. Nested blocks join the outer one."""
    outer = _gathering()
    if outer is not None:
        yield outer
        return
    pending = Gathered()
    _local.gathered = pending
    try:
        yield pending
    finally:
        _local.gathered = None
        pending.flush()


def after_pushes(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the pushes made so far are sent: at once, or inside
    :func:`gathered` after the next flush (a turn is queued after its question is pushed,
    so the page never shows the answer first)."""
    pending = _gathering()
    if pending is not None:
        pending.then.append(callback)
    else:
        callback()


def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    pending = _gathering()
    if pending is not None:
        pending.sends.extend(sends)
    else:
        group_send_many(sends)


def _send(tenant_id: int, conversation_id: int, event: dict[str, Any]) -> None:
    _send_all([(conversation_group(tenant_id, conversation_id), event)])


def push_message(message: Message) -> None:
    push_messages([message])


def push_messages(messages: list[Message]) -> None:
    """:func:`push_message` for many messages, in one send."""
    _send_all(
        [
            (
                conversation_group(message.tenant_id, message.conversation_id),
                {"type": "chat.message", "message": message_to_wire(message)},
            )
            for message in messages
        ]
    )


def push_typing(conversation: Conversation, role: str) -> None:
    _send(conversation.tenant_id, conversation.pk, {"type": "chat.typing", "role": role})


def push_inbox(conversation: Conversation) -> None:
    """Tell the operators' live list that a conversation changed (fresh from the database).
    A customer conversation nobody wrote in yet is not on that list: nothing is pushed."""
    push_inbox_many([conversation])


def push_inbox_many(conversations: list[Conversation]) -> None:
    """:func:`push_inbox` for many conversations of one tenant: one query, one send."""
    if not conversations:
        return
    pending = _gathering()
    if pending is not None:
        held = pending.inbox.setdefault(conversations[0].tenant_id, {})
        held.update((conversation.pk, conversation) for conversation in conversations)
        return
    group_send_many(_inbox_sends(conversations))


def _inbox_sends(conversations: list[Conversation]) -> list[tuple[str, dict[str, Any]]]:
    tenant_id = conversations[0].tenant_id
    fresh = conversations_listed_for_operators(
        Conversation.objects.all_tenants().filter(
            tenant_id=tenant_id, pk__in={conversation.pk for conversation in conversations}
        )
    ).order_by("last_activity_at", "id")
    group = inbox_group(tenant_id)
    return [(group, {"type": "inbox.conversation", "conversation": conversation_to_wire(row)}) for row in fresh]


def push_status(conversation: Conversation) -> None:
    _send(
        conversation.tenant_id,
        conversation.pk,
        {
            "type": "chat.status",
            "status": conversation.status,
            "handled_by": conversation.handled_by,
            "priority": conversation.priority,
            "assignee": conversation.assignee_id,
        },
    )
