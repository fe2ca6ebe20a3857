"""Writes of conversations: messages, turns, takeover. Tenant first; side effects (pushes,
task enqueues) after commit."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents_app.language import reply_language
from conversations import realtime
from conversations.models import Conversation, ConversationState, Inbox, Message
from morvo.models import Tenant

logger = logging.getLogger(__name__)


class ChatError(ValueError):
    """Refused input; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def content_clean(content: Any) -> str:
    if not isinstance(content, str):
        raise ChatError("invalid_content", "The message content must be text.")
    content = content.strip()
    if not content:
        raise ChatError("empty_content", "The message is empty.")
    if len(content) > Message.MAX_CONTENT_LENGTH:
        raise ChatError("content_too_long", f"The message is longer than {Message.MAX_CONTENT_LENGTH} characters.")
    return content


def inbox_get_or_create(tenant: Tenant, channel_type: str) -> Inbox:
    """The tenant's default inbox of a channel type (the companion, the web chat)."""
    inbox = Inbox.objects.for_tenant(tenant).filter(channel_type=channel_type).order_by("id").first()
    if inbox is not None:
        return inbox
    name = Inbox.ChannelType(channel_type).label
    inbox, _ = Inbox.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, name=str(name), defaults={"channel_type": channel_type}
    )
    return inbox


def conversation_start_companion(tenant: Tenant, user: Any, title: str = "") -> Conversation:
    inbox = inbox_get_or_create(tenant, Inbox.ChannelType.COMPANION)
    return Conversation.objects.create(
        tenant=tenant, inbox=inbox, kind=Conversation.Kind.COMPANION, staff_user=user, title=title[:200]
    )


def conversation_start_visitor(tenant: Tenant, visitor_id: str, title: str = "") -> Conversation:
    inbox = inbox_get_or_create(tenant, Inbox.ChannelType.WEB)
    return Conversation.objects.create(
        tenant=tenant, inbox=inbox, kind=Conversation.Kind.CUSTOMER, visitor_id=visitor_id, title=title[:200]
    )


def conversation_start_customer(tenant: Tenant, inbox: Inbox, title: str = "") -> Conversation:
    """A customer conversation in one of the tenant's inboxes (opened by an integrator)."""
    if inbox.tenant_id != tenant.pk:
        raise Inbox.DoesNotExist
    return Conversation.objects.create(tenant=tenant, inbox=inbox, kind=Conversation.Kind.CUSTOMER, title=title[:200])


def message_post(
    tenant: Tenant,
    conversation: Conversation,
    *,
    content: Any,
    role: str = Message.Role.USER,
    client_message_id: str | None = None,
    author: Any = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Message, bool]:
    """Persist a message, idempotent on ``client_message_id``; returns (message, created).

    A new user message in a conversation the AI handles starts a turn (after commit); every
    new message is pushed to the conversation's sockets (notes only reach staff).
    """
    if conversation.tenant_id != tenant.pk:
        raise Conversation.DoesNotExist
    content = content_clean(content)
    if client_message_id is not None:
        client_message_id = str(client_message_id)[:100]
        existing = Message.objects.for_tenant(tenant).filter(
            conversation=conversation, client_message_id=client_message_id
        )
        found = existing.first()
        if found is not None:
            return found, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                tenant=tenant,
                conversation=conversation,
                role=role,
                content=content,
                client_message_id=client_message_id,
                author=author,
                metadata=metadata or {},
            )
            changes: dict[str, Any] = {"last_activity_at": message.created_at}
            if role == Message.Role.USER:
                changes["unread_for_agents"] = F("unread_for_agents") + 1
                if not conversation.language:
                    changes["language"] = reply_language(content, tenant.default_language)
                if conversation.status == Conversation.Status.RESOLVED:
                    changes["status"] = Conversation.Status.OPEN
            elif role in (Message.Role.ASSISTANT, Message.Role.AGENT):
                changes["unread_for_user"] = F("unread_for_user") + 1
            Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**changes)
    except IntegrityError:
        # The same client id raced in from another socket: the first one wins.
        if client_message_id is None:
            raise
        return Message.objects.for_tenant(tenant).get(
            conversation=conversation, client_message_id=client_message_id
        ), False

    starts_turn = role == Message.Role.USER and conversation.handled_by == Conversation.HandledBy.AI

    def after_commit() -> None:
        realtime.push_message(message)
        if role != Message.Role.NOTE:
            realtime.push_inbox(conversation)
        if starts_turn:
            from conversations.tasks import conversation_turn_task

            conversation_turn_task.delay(tenant.pk, message.pk)

    transaction.on_commit(after_commit)
    return message, True


FAILURE_NOTICE = {
    "ar": "عذرًا، تعذّر علينا الرد الآن. أعد المحاولة بعد قليل، أو اطلب التحدث مع موظف.",
    "en": "Sorry, we couldn't answer just now. Please try again shortly, or ask to talk to a person.",
}


def turn_run(tenant: Tenant, message_id: int) -> Message | None:
    """Answer one user message: at most one reply, ever (safe to run twice, or after a crash).

    Returns the reply, or None when no reply is due (a person handles the conversation).
    """
    from agents_app.pipeline import handle_turn

    message = Message.objects.for_tenant(tenant).select_related("conversation").get(pk=message_id)
    existing = Message.objects.for_tenant(tenant).filter(reply_to=message, role=Message.Role.ASSISTANT).first()
    if existing is not None:
        return existing
    conversation = message.conversation
    if conversation.handled_by != Conversation.HandledBy.AI:
        return None
    realtime.push_typing(conversation, "assistant")
    try:
        reply = handle_turn(tenant, conversation, message)
        content, metadata = reply.content, {**reply.metadata, "language": reply.language}
    except Exception:
        logger.exception("turn failed for message %s of tenant %s", message_id, tenant.pk)
        content, metadata = _failure_notice(tenant, message)
    return _reply_save(tenant, message, content, metadata)


def _failure_notice(tenant: Tenant, message: Message) -> tuple[str, dict[str, Any]]:
    language = reply_language(message.content, tenant.default_language)
    return FAILURE_NOTICE[language], {"failure": True, "language": language}


def _reply_save(tenant: Tenant, message: Message, content: str, metadata: dict[str, Any]) -> Message:
    """Store the one answer to ``message`` (a concurrent run's answer wins) and push it."""
    conversation = message.conversation
    try:
        with transaction.atomic():
            answer = Message.objects.create(
                tenant=tenant,
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                content=content,
                metadata=metadata,
                reply_to=message,
            )
            Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(
                last_activity_at=answer.created_at, unread_for_user=F("unread_for_user") + 1
            )
    except IntegrityError:
        return Message.objects.for_tenant(tenant).get(reply_to=message, role=Message.Role.ASSISTANT)
    transaction.on_commit(lambda: realtime.push_message(answer))
    return answer


def turns_overdue(tenant: Tenant, older_than_seconds: int, within_seconds: int = 24 * 3600) -> Any:
    """User messages of AI-handled conversations still unanswered after ``older_than_seconds``."""
    from django.db.models import Exists, OuterRef

    now = timezone.now()
    answered = Message.objects.for_tenant(tenant).filter(reply_to=OuterRef("pk"), role=Message.Role.ASSISTANT)
    return (
        Message.objects.for_tenant(tenant)
        .filter(
            role=Message.Role.USER,
            conversation__handled_by=Conversation.HandledBy.AI,
            created_at__lte=now - timedelta(seconds=older_than_seconds),
            created_at__gte=now - timedelta(seconds=within_seconds),
        )
        .filter(~Exists(answered))
        .select_related("conversation")
        .order_by("id")
    )


def turns_recover(tenant: Tenant, *, retry_after_seconds: int = 60, give_up_after_seconds: int = 300) -> dict[str, int]:
    """Nobody is left without an answer: a turn that is late (its task lost, the worker down
    for a while) is run again; one that is very late gets the failure notice instead.
    Safe to run at any time and twice: turns answer each message at most once."""
    from conversations.tasks import conversation_turn_task

    retried = failed = 0
    for message in turns_overdue(tenant, retry_after_seconds)[:500]:
        age = (timezone.now() - message.created_at).total_seconds()
        if age >= give_up_after_seconds:
            content, metadata = _failure_notice(tenant, message)
            _reply_save(tenant, message, content, {**metadata, "overdue": True})
            failed += 1
        else:
            conversation_turn_task.apply_async((tenant.pk, message.pk), expires=retry_after_seconds)
            retried += 1
    return {"retried": retried, "failed": failed}


def messages_mark_read(tenant: Tenant, conversation: Conversation, up_to_id: int, reader_is_staff: bool) -> int:
    """Mark the other side's messages up to ``up_to_id`` as read."""
    roles = (
        [Message.Role.USER] if reader_is_staff else [Message.Role.ASSISTANT, Message.Role.AGENT, Message.Role.SYSTEM]
    )
    now = timezone.now()
    updated = (
        Message.objects.for_tenant(tenant)
        .filter(conversation=conversation, id__lte=up_to_id, role__in=roles, read_at__isnull=True)
        .update(read_at=now, delivery_status=Message.DeliveryStatus.READ)
    )
    field = "unread_for_agents" if reader_is_staff else "unread_for_user"
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**{field: 0})
    return updated


TAKEOVER_NOTICE = {
    "ar": "انضم إليك أحد أعضاء فريقنا وسيكمل المحادثة معك.",
    "en": "A member of our team has joined and will continue the conversation with you.",
}
HANDBACK_NOTICE = {
    "ar": "عاد المساعد الذكي لمتابعة المحادثة.",
    "en": "The AI assistant is back in the conversation.",
}


@transaction.atomic
def conversation_take_over(tenant: Tenant, conversation_id: int, agent: Any) -> Conversation:
    """A person takes the conversation: the AI stops replying and the customer is told."""
    conversation = Conversation.objects.for_tenant(tenant).select_for_update().get(pk=conversation_id)
    if conversation.handled_by == Conversation.HandledBy.HUMAN and conversation.assignee_id == agent.pk:
        return conversation
    conversation.handled_by = Conversation.HandledBy.HUMAN
    conversation.assignee = agent
    conversation.save(update_fields=["handled_by", "assignee"])
    transaction.on_commit(lambda: realtime.push_inbox(conversation))
    language = conversation.language or tenant.default_language
    message_post(
        tenant, conversation, content=TAKEOVER_NOTICE.get(language, TAKEOVER_NOTICE["en"]), role=Message.Role.SYSTEM
    )
    transaction.on_commit(lambda: realtime.push_status(conversation))
    return conversation


@transaction.atomic
def conversation_hand_back(tenant: Tenant, conversation_id: int) -> Conversation:
    conversation = Conversation.objects.for_tenant(tenant).select_for_update().get(pk=conversation_id)
    if conversation.handled_by == Conversation.HandledBy.AI:
        return conversation
    conversation.handled_by = Conversation.HandledBy.AI
    conversation.save(update_fields=["handled_by"])
    language = conversation.language or tenant.default_language
    message_post(
        tenant, conversation, content=HANDBACK_NOTICE.get(language, HANDBACK_NOTICE["en"]), role=Message.Role.SYSTEM
    )
    transaction.on_commit(lambda: realtime.push_status(conversation))
    return conversation


PRIORITY_ORDER = ["low", "medium", "high", "urgent"]


@transaction.atomic
def conversation_escalate(tenant: Tenant, conversation_id: int, *, reason: str, priority: str = "high") -> Conversation:
    """Hand the conversation to people: the AI stops answering, the conversation waits in the
    queue (pending, unassigned) at ``priority`` or higher, labelled ``escalated``, with the
    reason as a private note. The customer is told by the turn's own reply. Escalating twice
    changes nothing the second time."""
    conversation = Conversation.objects.for_tenant(tenant).select_for_update().get(pk=conversation_id)
    if conversation.handled_by == Conversation.HandledBy.HUMAN and "escalated" in conversation.labels:
        return conversation
    if PRIORITY_ORDER.index(priority) > PRIORITY_ORDER.index(conversation.priority):
        conversation.priority = priority
    conversation.handled_by = Conversation.HandledBy.HUMAN
    conversation.status = Conversation.Status.PENDING
    if "escalated" not in conversation.labels:
        conversation.labels = [*conversation.labels, "escalated"]
    conversation.save(update_fields=["priority", "handled_by", "status", "labels"])
    message_post(tenant, conversation, content=reason or "escalated", role=Message.Role.NOTE)
    transaction.on_commit(lambda: realtime.push_inbox(conversation))
    transaction.on_commit(lambda: realtime.push_status(conversation))
    return conversation


def conversation_update(tenant: Tenant, conversation_id: int, **changes: Any) -> Conversation:
    """Change status, priority, assignee, labels or the snooze time (what operators change).

    ``assignee`` must be a member of the tenant; ``snoozed`` needs ``snoozed_until`` in the
    future; labels are trimmed, lower-cased and de-duplicated.
    """
    allowed = {"status", "priority", "assignee", "labels", "snoozed_until", "title"}
    unknown = set(changes) - allowed
    if unknown:
        raise ChatError("invalid_field", f"Cannot change: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        conversation = Conversation.objects.for_tenant(tenant).select_for_update().get(pk=conversation_id)
        if "assignee" in changes and changes["assignee"] is not None:
            from morvo.models import Membership

            if not Membership.objects.filter(tenant=tenant, user=changes["assignee"]).exists():
                raise ChatError("invalid_assignee", "The assignee is not a member of this business.")
        if "labels" in changes:
            labels = changes["labels"] or []
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise ChatError("invalid_labels", "Labels are a list of words.")
            cleaned = list(dict.fromkeys(label.strip().lower()[:50] for label in labels if label.strip()))
            changes["labels"] = cleaned
        status = changes.get("status", conversation.status)
        if status == Conversation.Status.SNOOZED:
            until = changes.get("snoozed_until", conversation.snoozed_until)
            if until is None or until <= timezone.now():
                raise ChatError("invalid_snooze", "Snoozing needs a time in the future.")
        elif "status" in changes:
            changes["snoozed_until"] = None
        for name, value in changes.items():
            setattr(conversation, name, value)
        try:
            conversation.full_clean(exclude=["inbox", "contact", "staff_user", "visitor_id"])
        except ValidationError as error:
            field, messages = next(iter(error.message_dict.items()))
            raise ChatError(f"invalid_{field}", f"{field}: {' '.join(messages)}") from error
        conversation.save(update_fields=[*changes])

    def after_commit() -> None:
        realtime.push_status(conversation)
        realtime.push_inbox(conversation)

    transaction.on_commit(after_commit)
    return conversation


def note_add(tenant: Tenant, conversation: Conversation, author: Any, content: Any) -> Message:
    """A private note: shown to staff only, never to the customer, never sent to a channel."""
    message, _ = message_post(tenant, conversation, content=content, role=Message.Role.NOTE, author=author)
    return message


def agent_reply(
    tenant: Tenant, conversation: Conversation, author: Any, content: Any, client_message_id: str | None = None
) -> tuple[Message, bool]:
    """A person answers the customer (the AI keeps replying unless the conversation was taken over)."""
    return message_post(
        tenant,
        conversation,
        content=content,
        role=Message.Role.AGENT,
        author=author,
        client_message_id=client_message_id,
    )


class StateConflict(Exception):
    """The conversation's state changed since it was read; read it again and retry."""


def conversation_state_get(tenant: Tenant, conversation: Conversation) -> ConversationState:
    if conversation.tenant_id != tenant.pk:
        raise Conversation.DoesNotExist
    state, _ = ConversationState.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, conversation=conversation, defaults={"data": {}, "version": 0}
    )
    return state


def conversation_state_update(
    tenant: Tenant, conversation: Conversation, *, expected_version: int, data: dict[str, Any]
) -> ConversationState:
    """Write the state only if it is still at ``expected_version`` (compare-and-swap), so two
    workers never overwrite each other; the loser gets :class:`StateConflict`."""
    conversation_state_get(tenant, conversation)
    updated = (
        ConversationState.objects.for_tenant(tenant)
        .filter(conversation=conversation, version=expected_version)
        .update(data=data, version=expected_version + 1, updated_at=timezone.now())
    )
    if updated == 0:
        raise StateConflict(f"conversation {conversation.pk}: state is no longer at version {expected_version}")
    return ConversationState.objects.for_tenant(tenant).get(conversation=conversation)
