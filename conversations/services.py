"""Writes of conversations: messages, turns, takeover. Tenant first; side effects (pushes,
task enqueues) after commit."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from agents_app.language import reply_language
from conversations import realtime
from conversations.models import Conversation, ConversationState, Inbox, Message, OutboxMessage, WebhookEvent
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


def conversation_start_customer(
    tenant: Tenant, inbox: Inbox, title: str = "", *, contact: Any = None, language: str = ""
) -> Conversation:
    """A customer conversation in one of the tenant's inboxes (opened by an integrator, or by
    Morvo to reach a contact on a channel), optionally with its contact and language."""
    if inbox.tenant_id != tenant.pk:
        raise Inbox.DoesNotExist
    if contact is not None and contact.tenant_id != tenant.pk:
        raise type(contact).DoesNotExist
    return Conversation.objects.create(
        tenant=tenant,
        inbox=inbox,
        kind=Conversation.Kind.CUSTOMER,
        title=title[:200],
        contact=contact,
        language=language,
    )


def message_post(
    tenant: Tenant,
    conversation: Conversation,
    *,
    content: Any,
    role: str = Message.Role.USER,
    client_message_id: str | None = None,
    author: Any = None,
    metadata: dict[str, Any] | None = None,
    content_type: str = "text",
    external_id: str = "",
) -> tuple[Message, bool]:
    """Persist a message, idempotent on ``client_message_id``; returns (message, created).

    A new user message in a conversation the AI handles starts a turn (after commit); every
    new message is pushed to the conversation's sockets (notes only reach staff).
    ``external_id`` is the provider's id of a message that came in from a channel: a
    customer's such message also moves the conversation's ``customer_last_message_at``
    (WhatsApp's 24-hour window counts from it).
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
                content_type=content_type[:20],
                external_id=external_id[:255],
            )
            changes: dict[str, Any] = {"last_activity_at": message.created_at}
            if role == Message.Role.USER:
                changes["unread_for_agents"] = F("unread_for_agents") + 1
                if external_id:
                    changes["customer_last_message_at"] = message.created_at
                if not conversation.language and not message.metadata.get("attachment_only"):
                    changes["language"] = reply_language(content, tenant.default_language)
                if conversation.status == Conversation.Status.RESOLVED:
                    changes["status"] = Conversation.Status.OPEN
            elif role in (Message.Role.ASSISTANT, Message.Role.AGENT):
                changes["unread_for_user"] = F("unread_for_user") + 1
            Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**changes)
            # A message for the customer of a channel inbox leaves through the outbox.
            outbox_enqueue_message(tenant, conversation, message)
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

            realtime.after_pushes(lambda: conversation_turn_task.delay(tenant.pk, message.pk))

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
    if message.metadata.get("blocked"):
        return None  # a blocked contact's messages are kept for the record, never answered
    conversation = message.conversation
    if conversation.handled_by != Conversation.HandledBy.AI:
        return None
    if message.metadata.get("attachment_only"):
        content, metadata = _attachment_notice(tenant, conversation)
        return _reply_save(tenant, message, content, metadata)
    realtime.push_typing(conversation, "assistant")
    try:
        reply = handle_turn(tenant, conversation, message)
        content, metadata = reply.content, {**reply.metadata, "language": reply.language}
    except Exception:
        logger.exception("turn failed for message %s of tenant %s", message_id, tenant.pk)
        content, metadata = _failure_notice(tenant, message)
    return _reply_save(tenant, message, content, metadata)


ATTACHMENT_NOTICE = {
    "ar": "شكرًا لك! لا أستطيع فتح الصور أو الرسائل الصوتية أو الملفات هنا بعد. هل يمكنك كتابة ما تحتاجه في رسالة؟ "
    "ما أرسلته يصل إلى فريقنا أيضًا.",
    "en": "Thank you! I can't open photos, voice notes or files here yet. Could you write what you need in a "
    "message? What you sent reaches our team too.",
}


def _attachment_notice(tenant: Tenant, conversation: Conversation) -> tuple[str, dict[str, Any]]:
    """The answer to a message that is only a photo, a voice note, a file or a location: the
    assistant cannot read it, says so in the customer's language and asks for words. The
    message itself stays in the inbox for the team."""
    language = conversation.language or getattr(conversation.contact, "language", "") or tenant.default_language
    language = language if language in ATTACHMENT_NOTICE else "ar"
    return ATTACHMENT_NOTICE[language], {"attachment_notice": True, "language": language}


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
            outbox_enqueue_message(tenant, conversation, answer)
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
        .exclude(metadata__contains={"blocked": True})
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
    outbox_enqueue_labels(tenant, conversation)
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
            # Only what changes is validated: the other fields were valid when stored (and
            # validating a foreign key costs a query).
            unchanged = [field.name for field in Conversation._meta.concrete_fields if field.name not in changes]
            conversation.full_clean(exclude=unchanged, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            field, messages = next(iter(error.message_dict.items()))
            raise ChatError(f"invalid_{field}", f"{field}: {' '.join(messages)}") from error
        conversation.save(update_fields=[*changes])
        if "labels" in changes:
            outbox_enqueue_labels(tenant, conversation)

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


# --- Outbound: Morvo speaks first, the companion is told ----------------------------------


def message_send_outbound(
    tenant: Tenant,
    conversation: Conversation,
    content: str,
    *,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """An assistant message Morvo starts (a stock alert, a reminder, a campaign DM), not a
    reply to a user message. Idempotent on ``idempotency_key``: the same key returns the
    stored message and sends nothing again. Pushed to the sockets of the conversation (the
    web chat, the companion); in a channel inbox it is queued in the outbox and delivered
    after commit. Raises :class:`ChatError` for empty or too long content."""
    if conversation.tenant_id != tenant.pk:
        raise Conversation.DoesNotExist
    with transaction.atomic():
        message, _ = message_post(
            tenant,
            conversation,
            content=content,
            role=Message.Role.ASSISTANT,
            client_message_id=idempotency_key,
            metadata={**(metadata or {}), "outbound": True},
        )
    return message


@dataclass
class Outbound:
    """One message of :func:`messages_send_outbound`."""

    conversation: Conversation
    content: str
    idempotency_key: str
    metadata: dict[str, Any] = field(default_factory=dict)


def messages_send_outbound(tenant: Tenant, items: list[Outbound]) -> list[Message]:
    """:func:`message_send_outbound` for many messages at once (a restock telling hundreds of
    customers): the same messages, outbox rows, counts and pushes, written in a few
    statements in one transaction instead of a dozen round trips each. Idempotent on each
    item's key (a key already sent returns its message). All or nothing: a bad item (another
    tenant's conversation, empty or too long content, a key racing in) raises and writes
    nothing, so a caller can fall back to sending one by one. Returns the messages in the
    order of ``items``."""
    if not items:
        return []
    for item in items:
        if item.conversation.tenant_id != tenant.pk:
            raise Conversation.DoesNotExist
        item.content = content_clean(item.content)
        item.idempotency_key = str(item.idempotency_key)[:100]
    keys = {(item.conversation.pk, item.idempotency_key) for item in items}
    if len(keys) != len(items):
        raise ChatError("duplicate_key", "Two messages of one conversation share an idempotency key.")
    conversation_ids = {item.conversation.pk for item in items}
    with transaction.atomic():
        existing = {
            (message.conversation_id, message.client_message_id): message
            for message in Message.objects.for_tenant(tenant).filter(
                conversation_id__in=conversation_ids, client_message_id__in={key for _, key in keys}
            )
        }
        fresh = [item for item in items if (item.conversation.pk, item.idempotency_key) not in existing]
        queued = {id(item) for item in fresh if _outbox_kind(item.conversation, Message.Role.ASSISTANT) is not None}
        created = Message.objects.bulk_create(
            [
                Message(
                    tenant=tenant,
                    conversation=item.conversation,
                    role=Message.Role.ASSISTANT,
                    content=item.content,
                    client_message_id=item.idempotency_key,
                    metadata={**item.metadata, "outbound": True},
                    **({"delivery_status": Message.DeliveryStatus.QUEUED} if id(item) in queued else {}),
                )
                for item in fresh
            ]
        )
        for item, message in zip(fresh, created, strict=True):
            existing[(item.conversation.pk, item.idempotency_key)] = message
        if created:
            _conversations_touch(tenant, created)
            rows = OutboxMessage.objects.bulk_create(
                [
                    OutboxMessage(
                        tenant=tenant,
                        inbox_id=item.conversation.inbox_id,
                        conversation=item.conversation,
                        message=message,
                        kind=OutboxMessage.Kind.MESSAGE,
                    )
                    for item, message in zip(fresh, created, strict=True)
                    if id(item) in queued
                ]
            )
            for row in {row.inbox_id: row for row in rows}.values():
                _outbox_schedule(tenant, row)

            def after_commit() -> None:
                realtime.push_messages(created)
                realtime.push_inbox_many([item.conversation for item in fresh])

            transaction.on_commit(after_commit)
    return [existing[(item.conversation.pk, item.idempotency_key)] for item in items]


def _conversations_touch(tenant: Tenant, messages: list[Message]) -> None:
    """What posting an assistant message does to its conversation (its last activity, the
    customer's unread count), for many messages in one statement."""
    from django.db import connection

    per_conversation: dict[int, tuple[Any, int]] = {}
    for message in messages:
        at, count = per_conversation.get(message.conversation_id, (message.created_at, 0))
        per_conversation[message.conversation_id] = (max(at, message.created_at), count + 1)
    table = Conversation._meta.db_table
    params: list[Any] = []
    for conversation_id, (at, count) in per_conversation.items():
        params += [conversation_id, at, count]
    values = ", ".join(["(%s::bigint, %s::timestamptz, %s::integer)"] * len(per_conversation))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS conversation SET last_activity_at = v.at, "  # noqa: S608 (table name is ours)
            "unread_for_user = conversation.unread_for_user + v.count "
            f"FROM (VALUES {values}) AS v(id, at, count) WHERE conversation.id = v.id AND conversation.tenant_id = %s",
            [*params, tenant.pk],
        )


def companion_notify(tenant: Tenant, content: str, metadata: dict[str, Any]) -> Message | None:
    """Tell the business's staff something in the companion: an assistant message in the
    owner's most recent companion conversation (one is started when there is none).

    ``metadata["idempotency_key"]``, when given, makes a repeat return the first message
    instead of posting again. Returns None when the tenant has no owner to tell.
    """
    from morvo.models import Membership

    membership = (
        Membership.objects.filter(tenant=tenant, role=Membership.Role.OWNER, user__is_active=True)
        .select_related("user")
        .order_by("id")
        .first()
    )
    if membership is None:
        return None
    owner = membership.user
    key = metadata.get("idempotency_key")
    key = str(key)[:100] if key else None
    companion = Conversation.objects.for_tenant(tenant).filter(kind=Conversation.Kind.COMPANION, staff_user=owner)
    with transaction.atomic():
        if key is not None:
            already = (
                Message.objects.for_tenant(tenant)
                .filter(conversation__in=companion, client_message_id=key, role=Message.Role.ASSISTANT)
                .first()
            )
            if already is not None:
                return already
        conversation = companion.order_by("-last_activity_at", "-id").first()
        if conversation is None:
            conversation = conversation_start_companion(tenant, owner)
        return message_send_outbound(tenant, conversation, content, metadata=metadata, idempotency_key=key)


# --- The outbox ---------------------------------------------------------------------------

OUTBOX_MAX_ATTEMPTS = 5
OUTBOX_BACKOFF_BASE_SECONDS = 2
OUTBOX_BACKOFF_MAX_SECONDS = 15 * 60
# A row claimed for sending this long ago belongs to a worker that died: it is due again.
OUTBOX_STALE_CLAIM_SECONDS = 300
WHATSAPP_WINDOW = timedelta(hours=24)


def channel_adapter(inbox: Inbox) -> Any:
    from conversations.channels import adapter_for

    return adapter_for(inbox.channel_type)


def outbox_backoff_seconds(attempts: int) -> int:
    """Seconds before the next try after ``attempts`` failures: 2, 4, 8, 16… capped at 15 min."""
    return int(min(OUTBOX_BACKOFF_MAX_SECONDS, OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


class _PumpAfterCommit:
    """The on-commit callback that starts an inbox's pump. A transaction that queues many rows
    for one inbox (a batch of stock alerts) registers it once (see ``_outbox_schedule``)."""

    def __init__(self, tenant_id: int, inbox_id: int) -> None:
        self.key = (tenant_id, inbox_id)
        self.ran = False

    def __call__(self) -> None:
        self.ran = True
        outbox_pump_start(*self.key)


def outbox_pump_start(tenant_id: int, inbox_id: int, countdown: float = 0.0) -> None:
    """Queue the inbox's pump (now, or in ``countdown`` seconds). Pumps are cheap to queue
    twice: a second one finds the inbox taken or nothing due."""
    from conversations.tasks import outbox_pump_task

    outbox_pump_task.apply_async((tenant_id, inbox_id), countdown=countdown or None)


def _outbox_schedule(tenant: Tenant, outbox: OutboxMessage, countdown: float = 0) -> None:
    """After commit, start the pump of the row's inbox (in ``countdown`` seconds when given)."""
    tenant_id, inbox_id = tenant.pk, outbox.inbox_id
    if countdown:
        transaction.on_commit(lambda: outbox_pump_start(tenant_id, inbox_id, countdown))
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        # One start per inbox per transaction. Django drops the callbacks of a rolled-back
        # savepoint from this list, so a row queued after such a rollback registers again.
        for _savepoints, callback, _robust in connection.run_on_commit:
            if isinstance(callback, _PumpAfterCommit) and callback.key == (tenant_id, inbox_id) and not callback.ran:
                return
    transaction.on_commit(_PumpAfterCommit(tenant_id, inbox_id))


def _outbox_kind(conversation: Conversation, role: str) -> str | None:
    """What a message of ``role`` in ``conversation`` becomes in the outbox, or None when it
    is not for the channel: the customer's own words, a conversation that is no channel
    thread (the web chat, the companion), a note outside Chatwoot."""
    if role == Message.Role.USER or not conversation.external_id:
        return None
    inbox = conversation.inbox
    if channel_adapter(inbox) is None:
        return None
    if role in (Message.Role.ASSISTANT, Message.Role.AGENT, Message.Role.SYSTEM):
        return OutboxMessage.Kind.MESSAGE
    if role == Message.Role.NOTE and inbox.channel_type == Inbox.ChannelType.CHATWOOT:
        return OutboxMessage.Kind.NOTE
    return None


def outbox_enqueue_message(tenant: Tenant, conversation: Conversation, message: Message) -> OutboxMessage | None:
    """Queue ``message`` for the conversation's channel (inside the caller's transaction), or
    do nothing when the conversation is not on a channel or the message is not for the
    customer. Private notes reach Chatwoot only, as private notes."""
    kind = _outbox_kind(conversation, message.role)
    if kind is None:
        return None
    inbox = conversation.inbox
    with transaction.atomic():
        outbox, created = OutboxMessage.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, message=message, kind=kind, defaults={"inbox": inbox, "conversation": conversation}
        )
        if created and kind == OutboxMessage.Kind.MESSAGE:
            Message.objects.for_tenant(tenant).filter(pk=message.pk).update(
                delivery_status=Message.DeliveryStatus.QUEUED
            )
            message.delivery_status = Message.DeliveryStatus.QUEUED
    if created:
        _outbox_schedule(tenant, outbox)
    return outbox


def outbox_enqueue_labels(tenant: Tenant, conversation: Conversation) -> OutboxMessage | None:
    """Mirror the conversation's labels onto its Chatwoot conversation."""
    if conversation.inbox.channel_type != Inbox.ChannelType.CHATWOOT or not conversation.external_id:
        return None
    outbox = OutboxMessage.objects.for_tenant(tenant).create(
        tenant=tenant,
        inbox=conversation.inbox,
        conversation=conversation,
        kind=OutboxMessage.Kind.LABELS,
        payload={"labels": list(conversation.labels)},
    )
    _outbox_schedule(tenant, outbox)
    return outbox


def chatwoot_contact_attributes_set(
    tenant: Tenant, conversation: Conversation, attributes: dict[str, Any]
) -> OutboxMessage | None:
    """Set custom attributes of the Chatwoot contact behind ``conversation`` (a lead score, an
    intent). None when the conversation is not a Chatwoot one or its contact is unknown."""
    if conversation.tenant_id != tenant.pk:
        raise Conversation.DoesNotExist
    if conversation.inbox.channel_type != Inbox.ChannelType.CHATWOOT or not attributes:
        return None
    latest = (
        Message.objects.for_tenant(tenant)
        .filter(conversation=conversation, role=Message.Role.USER, metadata__has_key="chatwoot_contact_id")
        .order_by("-id")
        .first()
    )
    contact_id = latest.metadata.get("chatwoot_contact_id") if latest is not None else None
    if contact_id is None:
        return None
    with transaction.atomic():
        outbox = OutboxMessage.objects.for_tenant(tenant).create(
            tenant=tenant,
            inbox=conversation.inbox,
            conversation=conversation,
            kind=OutboxMessage.Kind.ATTRIBUTES,
            payload={"contact_id": contact_id, "custom_attributes": dict(attributes)},
        )
        _outbox_schedule(tenant, outbox)
    return outbox


def whatsapp_window_open(conversation: Conversation, now: Any = None) -> bool:
    """WhatsApp lets a business send free text only within 24 hours of the customer's last
    message; outside it only an approved template."""
    last = conversation.customer_last_message_at
    return last is not None and (now or timezone.now()) - last < WHATSAPP_WINDOW


def _outbox_dead(tenant: Tenant, outbox: OutboxMessage, error: str) -> None:
    with transaction.atomic():
        OutboxMessage.objects.for_tenant(tenant).filter(pk=outbox.pk).update(
            status=OutboxMessage.Status.DEAD, last_error=error[:2000], claimed_at=None
        )
        if outbox.message_id is not None and outbox.kind == OutboxMessage.Kind.MESSAGE:
            Message.objects.for_tenant(tenant).filter(pk=outbox.message_id).update(
                delivery_status=Message.DeliveryStatus.FAILED
            )
    logger.warning("outbox %s of tenant %s is a dead letter: %s", outbox.pk, tenant.pk, error[:200])


def _outbox_claim(tenant: Tenant, inbox: Inbox, limit: int) -> list[OutboxMessage]:
    """Claim up to ``limit`` of the inbox's due rows, oldest first (``SKIP LOCKED``: a row
    another worker is claiming is left to it), and return them ready to send. A row waits
    while an earlier row of its conversation waits for a retry: a customer gets the messages
    of a conversation in the order they were written."""
    from django.db import connection

    table = OutboxMessage._meta.db_table
    now = timezone.now()
    pending = OutboxMessage.Status.PENDING
    with connection.cursor() as cursor:
        # The rows are picked in a CTE, which runs once. As `WHERE id IN (SELECT … LIMIT n FOR
        # UPDATE SKIP LOCKED)` the planner may run the subquery again for each row, each run
        # skipping the rows the last one locked, and claim far more than n.
        cursor.execute(
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} AS row "  # noqa: S608 (table name is ours)
            "WHERE tenant_id = %s AND inbox_id = %s AND status = %s AND next_attempt_at <= %s "
            f"AND NOT EXISTS (SELECT 1 FROM {table} AS earlier WHERE earlier.conversation_id = row.conversation_id "
            "AND earlier.status = %s AND earlier.next_attempt_at > %s AND earlier.id < row.id) "
            "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} AS claimed SET status = %s, claimed_at = %s FROM picked WHERE claimed.id = picked.id "
            "RETURNING claimed.id",
            [tenant.pk, inbox.pk, pending, now, pending, now, limit, OutboxMessage.Status.SENDING, now],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return _outbox_rows(tenant, inbox, ids)


# What building a provider request reads of a row's conversation and message (anything else,
# such as the e-mail channel's contact, is loaded when it is read).
_OUTBOX_ROW_FIELDS = (
    *(f"conversation__{name}" for name in ("tenant", "inbox", "contact", "kind", "external_id", "language", "title")),
    "conversation__customer_last_message_at",
    *(f"message__{name}" for name in ("tenant", "conversation", "role", "content", "content_type", "external_id")),
)


def _outbox_rows(tenant: Tenant, inbox: Inbox, ids: list[int]) -> list[OutboxMessage]:
    rows = list(
        OutboxMessage.objects.for_tenant(tenant)
        .select_related("conversation", "message")
        .only(*(field.name for field in OutboxMessage._meta.concrete_fields), *_OUTBOX_ROW_FIELDS)
        .filter(pk__in=ids)
        .order_by("next_attempt_at", "id")
    )
    for row in rows:
        row.inbox = inbox
    return rows


def _outbox_release(tenant: Tenant, rows: list[OutboxMessage], due_at: Any) -> None:
    """Hand claimed rows back without counting an attempt, due again at ``due_at`` (the
    inbox's rate is used up, or an earlier row of their conversation waits for a retry)."""
    OutboxMessage.objects.for_tenant(tenant).filter(pk__in=[row.pk for row in rows]).update(
        status=OutboxMessage.Status.PENDING, claimed_at=None, next_attempt_at=due_at
    )


def _outbox_rate_take(tenant: Tenant, inbox: Inbox, adapter: Any, wanted: int) -> tuple[int, float]:
    """Take up to ``wanted`` sends from this second's allowance of the inbox (its rate per
    second, counted across processes). Returns (granted, wait): ``wait`` is 0 while the second
    has sends left, else the time until the next second."""
    import time

    from morvo import services as core_services

    second = int(time.time())
    rate = adapter.rate_per_second(inbox)
    hits = core_services.throttle_hit(f"outbox:{tenant.pk}:{inbox.pk}", second, 1, amount=wanted)
    granted = max(0, min(wanted, rate - (hits - wanted)))
    wait = 0.0 if hits < rate else max(0.01, second + 1 - time.time())
    return granted, wait


_send_pool: Any = None
_send_pool_pid = 0


def _outbox_send_pool() -> Any:
    """Threads that make provider calls at once (``OUTBOX_SEND_THREADS`` per process): a
    provider answering in 200 ms would otherwise cap an inbox at five messages a second."""
    global _send_pool, _send_pool_pid
    import os
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    if _send_pool is None or _send_pool_pid != os.getpid():
        _send_pool = ThreadPoolExecutor(
            max_workers=max(1, int(getattr(settings, "OUTBOX_SEND_THREADS", 16))), thread_name_prefix="outbox-send"
        )
        _send_pool_pid = os.getpid()
    return _send_pool


# A row not sent because an earlier row of its conversation failed and will be tried again.
_HELD: Any = object()


def _outbox_send(adapter: Any, inbox: Inbox, rows: list[OutboxMessage]) -> list[Any]:
    """Send ``rows``; for each, the provider's message id, the :class:`DeliveryError`, or
    ``_HELD``. Requests are built here (they may read the rows' relations). Conversations are
    sent at once from threads, each conversation's rows in order; after a failure that will be
    tried again, the rest of that conversation is held back so it stays in order."""
    from conversations.channels.base import DeliveryError

    def attempt(call: Any) -> Any:
        try:
            return call()
        except DeliveryError as error:
            return error
        except Exception as error:  # a fault of ours must not lose the outcomes of the others
            logger.exception("outbox delivery through inbox %s failed unexpectedly", inbox.pk)
            return DeliveryError(f"{type(error).__name__}: {error}")

    calls: list[Any] = []
    for row in rows:
        if not adapter.sends_over_http:
            calls.append(lambda row=row: adapter.deliver(inbox, row.conversation, row, row.message))
            continue
        try:
            request = adapter.build_request(inbox, row.conversation, row, row.message)
        except (KeyError, TypeError, ValueError) as error:
            calls.append(DeliveryError(f"The inbox's configuration is incomplete: {error!r}", permanent=True))
        else:
            calls.append(lambda request=request: adapter.send(request))

    def run(indices: list[int]) -> dict[int, Any]:
        results: dict[int, Any] = {}
        held = False
        for index in indices:
            call = calls[index]
            if held:
                results[index] = _HELD
                continue
            results[index] = call if isinstance(call, DeliveryError) else attempt(call)
            held = isinstance(results[index], DeliveryError) and not results[index].permanent
        return results

    chains: dict[int, list[int]] = {}
    for index in sorted(range(len(rows)), key=lambda index: rows[index].pk):
        chains.setdefault(rows[index].conversation_id, []).append(index)
    results: dict[int, Any] = {}
    if len(chains) <= 1 or not adapter.sends_over_http:
        for indices in chains.values():
            results.update(run(indices))
    else:
        for future in [_outbox_send_pool().submit(run, indices) for indices in chains.values()]:
            results.update(future.result())
    return [results[index] for index in range(len(rows))]


def _outbox_sent_save(tenant: Tenant, sent: list[tuple[OutboxMessage, str]]) -> None:
    """Mark sent rows (and their messages) in two statements."""
    from django.db import connection

    if not sent:
        return
    sent_at = timezone.now()
    outbox_table, message_table = OutboxMessage._meta.db_table, Message._meta.db_table
    rows = ", ".join(["(%s::bigint, %s)"] * len(sent))
    params: list[Any] = []
    for outbox, provider_id in sent:
        params += [outbox.pk, provider_id[:255]]
    messages = [
        (outbox.message_id, provider_id[:255])
        for outbox, provider_id in sent
        if outbox.message_id is not None and outbox.kind == OutboxMessage.Kind.MESSAGE
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {outbox_table} AS row SET status = %s, attempts = row.attempts + 1, "  # noqa: S608
            "provider_message_id = v.provider_id, sent_at = %s, claimed_at = NULL, last_error = '' "
            f"FROM (VALUES {rows}) AS v(id, provider_id) WHERE row.id = v.id AND row.tenant_id = %s",
            [OutboxMessage.Status.SENT, sent_at, *params, tenant.pk],
        )
        if messages:
            cursor.execute(
                f"UPDATE {message_table} AS message SET external_id = v.provider_id, delivery_status = %s "  # noqa: S608
                f"FROM (VALUES {', '.join(['(%s::bigint, %s)'] * len(messages))}) AS v(id, provider_id) "
                "WHERE message.id = v.id AND message.tenant_id = %s",
                [Message.DeliveryStatus.SENT, *[value for pair in messages for value in pair], tenant.pk],
            )


def _outbox_failed(tenant: Tenant, outbox: OutboxMessage, error: Any) -> tuple[str, Any]:
    """A failed send: tried again later with backoff, or a dead letter (refused for good, or
    out of attempts). Returns (``retry``, when) or (``dead``, None)."""
    attempts = outbox.attempts + 1
    if error.permanent or attempts >= OUTBOX_MAX_ATTEMPTS:
        OutboxMessage.objects.for_tenant(tenant).filter(pk=outbox.pk).update(attempts=attempts)
        _outbox_dead(tenant, outbox, str(error))
        return "dead", None
    delay = outbox_backoff_seconds(attempts)
    retry_at = timezone.now() + timedelta(seconds=delay)
    with transaction.atomic():
        OutboxMessage.objects.for_tenant(tenant).filter(pk=outbox.pk).update(
            status=OutboxMessage.Status.PENDING,
            attempts=attempts,
            last_error=str(error)[:2000],
            claimed_at=None,
            next_attempt_at=retry_at,
        )
        _outbox_schedule(tenant, outbox, countdown=delay)
    return "retry", retry_at


def _outbox_deliver_claimed(tenant: Tenant, inbox: Inbox, rows: list[OutboxMessage], outcomes: dict[int, str]) -> float:
    """Deliver rows this process has claimed, within the inbox's rate: what is over it goes
    back, due when the next second starts. Each row's outcome (``sent``, ``retry``, ``dead``,
    ``throttled``, or ``held`` behind a failed row of its conversation) goes into
    ``outcomes``. Returns the seconds until the inbox may send again
    (0 when it still may this second)."""
    from conversations.channels.base import DeliveryError

    adapter = channel_adapter(inbox)
    if adapter is None or not inbox.is_active:
        for row in rows:
            _outbox_dead(tenant, row, "The inbox is not an active channel inbox.")
            outcomes[row.pk] = "dead"
        return 0.0
    granted, wait = _outbox_rate_take(tenant, inbox, adapter, len(rows))
    rows, over = rows[:granted], rows[granted:]
    if over:
        _outbox_release(tenant, over, timezone.now() + timedelta(seconds=wait))
        outcomes.update((row.pk, "throttled") for row in over)
    now = timezone.now()
    sendable: list[OutboxMessage] = []
    for row in rows:
        if (
            inbox.channel_type == Inbox.ChannelType.WHATSAPP
            and row.kind == OutboxMessage.Kind.MESSAGE
            and not whatsapp_window_open(row.conversation, now)
        ):
            template = adapter.template(inbox)
            if template is None:
                _outbox_dead(
                    tenant,
                    row,
                    "outside_24h_window: the customer last wrote over 24 hours ago and the inbox has no approved "
                    "template.",
                )
                outcomes[row.pk] = "dead"
                continue
            row.used_template = str(template["name"])[:120]
            OutboxMessage.objects.for_tenant(tenant).filter(pk=row.pk).update(used_template=row.used_template)
        sendable.append(row)
    sent: list[tuple[OutboxMessage, str]] = []
    held: list[OutboxMessage] = []
    retry_at: dict[int, Any] = {}  # conversation → when its failed row is tried again
    for row, result in zip(sendable, _outbox_send(adapter, inbox, sendable), strict=True):
        if result is _HELD:
            held.append(row)
            outcomes[row.pk] = "held"
        elif isinstance(result, DeliveryError):
            outcomes[row.pk], when = _outbox_failed(tenant, row, result)
            retry_at[row.conversation_id] = when or timezone.now()
        else:
            sent.append((row, result))
            outcomes[row.pk] = "sent"
    _outbox_sent_save(tenant, sent)
    for conversation_id, due_at in retry_at.items():  # due with the row they wait for, sent after it
        _outbox_release(tenant, [row for row in held if row.conversation_id == conversation_id], due_at)
    return wait


# The pump of an inbox holds this advisory lock (with the inbox's id) while it sends.
OUTBOX_PUMP_LOCK = 0x4F42
# A pump hands over to a fresh task after this long, so one busy inbox does not keep a
# worker from the rest of its queue.
OUTBOX_PUMP_SECONDS = 5.0
OUTBOX_PUMP_BATCH = 500


def _outbox_pump_lock(inbox_id: int, take: bool) -> bool:
    from django.db import connection

    function = "pg_try_advisory_lock" if take else "pg_advisory_unlock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [OUTBOX_PUMP_LOCK, inbox_id % 2**31])
        return bool(cursor.fetchone()[0])


def outbox_pump(tenant: Tenant, inbox_id: int) -> dict[str, int]:
    """Deliver what is due in one inbox: claim a second's worth of rows (the inbox's rate),
    send them at once, save the outcomes, and go on until nothing is due or the rate is used
    up, then queue the next pump for when the inbox may send again. One pump per inbox at a
    time (an advisory lock); a pump that finds the inbox taken returns at once, and the one
    holding it looks for newly due rows after letting go, so none is left waiting. Returns the
    count of each outcome."""
    import time

    counts = {"sent": 0, "retry": 0, "dead": 0, "throttled": 0, "held": 0}
    inbox = Inbox.objects.for_tenant(tenant).filter(pk=inbox_id).first()
    if inbox is None:
        return counts
    if not _outbox_pump_lock(inbox.pk, take=True):
        return {**counts, "busy": 1}
    again: float | None = None
    try:
        adapter = channel_adapter(inbox)
        limit = min(OUTBOX_PUMP_BATCH, adapter.rate_per_second(inbox) if adapter is not None else OUTBOX_PUMP_BATCH)
        deadline = time.monotonic() + OUTBOX_PUMP_SECONDS
        while True:
            rows = _outbox_claim(tenant, inbox, limit)
            if not rows:
                break
            outcomes: dict[int, str] = {}
            wait = _outbox_deliver_claimed(tenant, inbox, rows, outcomes)
            for outcome in outcomes.values():
                counts[outcome] += 1
            if wait or time.monotonic() >= deadline:
                again = wait
                break
    finally:
        _outbox_pump_lock(inbox.pk, take=False)
    if again is None and _outbox_due(tenant, inbox):
        again = 0.0  # queued while this pump was letting go
    if again is not None:
        outbox_pump_start(tenant.pk, inbox.pk, again)
    return counts


def _outbox_due(tenant: Tenant, inbox: Inbox) -> bool:
    return (
        OutboxMessage.objects.for_tenant(tenant)
        .filter(inbox=inbox, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=timezone.now())
        .exists()
    )


def outbox_deliver(tenant: Tenant, outbox_id: int) -> str:
    """Deliver one outbox row if it is due; returns what happened: ``sent``, ``retry``,
    ``dead``, ``throttled`` or ``skipped`` (not due, or another worker has it).

    The row is claimed with a conditional UPDATE, so two workers never send it twice; the
    provider is called outside any transaction. (The inbox's pump does the same for many
    rows at once; this is for one row.)
    """
    now = timezone.now()
    claimed = (
        OutboxMessage.objects.for_tenant(tenant)
        .filter(pk=outbox_id, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
        .update(status=OutboxMessage.Status.SENDING, claimed_at=now)
    )
    if not claimed:
        return "skipped"
    inbox_id = OutboxMessage.objects.for_tenant(tenant).values_list("inbox_id", flat=True).get(pk=outbox_id)
    inbox = Inbox.objects.for_tenant(tenant).get(pk=inbox_id)
    outcomes: dict[int, str] = {}
    wait = _outbox_deliver_claimed(tenant, inbox, _outbox_rows(tenant, inbox, [outbox_id]), outcomes)
    if outcomes[outbox_id] == "throttled":
        outbox_pump_start(tenant.pk, inbox.pk, wait)
    return outcomes[outbox_id]


def outbox_retry(tenant: Tenant, outbox_id: int) -> bool:
    """A person sends a dead letter again (the admin's retry action): its attempts start
    over. Returns False when the row is not a dead letter."""
    with transaction.atomic():
        updated = (
            OutboxMessage.objects.for_tenant(tenant)
            .filter(pk=outbox_id, status=OutboxMessage.Status.DEAD)
            .update(status=OutboxMessage.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_at=None)
        )
        if not updated:
            return False
        outbox = OutboxMessage.objects.for_tenant(tenant).get(pk=outbox_id)
        if outbox.message_id is not None and outbox.kind == OutboxMessage.Kind.MESSAGE:
            Message.objects.for_tenant(tenant).filter(pk=outbox.message_id).update(
                delivery_status=Message.DeliveryStatus.QUEUED
            )
        _outbox_schedule(tenant, outbox)
    return True


def outbox_flush(tenant: Tenant, limit: int = 500) -> int:
    """Beat: send again what is due and was not (a lost task, a worker that died while
    sending): rows claimed too long ago are due again, and the pump of every inbox with rows
    due for more than a few seconds is started. Returns how many such rows there were (at most
    ``limit``); safe to run twice (pumps claim each row)."""
    now = timezone.now()
    OutboxMessage.objects.for_tenant(tenant).filter(
        status=OutboxMessage.Status.SENDING, claimed_at__lt=now - timedelta(seconds=OUTBOX_STALE_CLAIM_SECONDS)
    ).update(status=OutboxMessage.Status.PENDING, claimed_at=None)
    due = list(
        OutboxMessage.objects.for_tenant(tenant)
        .filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=5))
        .order_by("next_attempt_at")
        .values_list("inbox_id", flat=True)[:limit]
    )
    for inbox_id in sorted(set(due)):
        outbox_pump_start(tenant.pk, inbox_id)
    return len(due)


# --- Inbound: webhooks --------------------------------------------------------------------

WEBHOOK_EVENT_MAX_ATTEMPTS = 5


def webhook_events_record(tenant: Tenant, inbox: Inbox, events: list[Any]) -> list[int]:
    """Store the events a verified webhook carried, each once (``(inbox, dedup_key)`` is
    unique: a retried or replayed webhook inserts nothing), and process the new ones in
    Celery after commit (queued from a background thread, see ``channels.dispatch``, so the
    provider is not kept waiting). Returns the ids of the new events that need processing."""
    from django.db import connection

    if inbox.tenant_id != tenant.pk:
        raise Inbox.DoesNotExist
    # One statement for all the events of the request (atomic by itself, and its own commit
    # when no transaction is open): the fewest round trips before the acknowledgement.
    unique = list({event.dedup_key[:255]: event for event in events}.values())
    if not unique:
        return []
    table = WebhookEvent._meta.db_table
    now = timezone.now()
    rows: list[Any] = []
    for event in unique:
        status = WebhookEvent.Status.IGNORED if event.kind == "ignored" else WebhookEvent.Status.PENDING
        processed_at = now if status == WebhookEvent.Status.IGNORED else None
        rows.extend([tenant.pk, inbox.pk, event.dedup_key[:255], event.kind[:20], json.dumps(event.data), status])
        rows.extend([now, processed_at])
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, 0, '', %s, %s)"] * len(unique))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, inbox_id, dedup_key, kind, payload, status, attempts, error, "  # noqa: S608
            f"received_at, processed_at) VALUES {values} "
            "ON CONFLICT (inbox_id, dedup_key) DO NOTHING RETURNING id, status",
            rows,
        )
        new_ids = sorted(int(row[0]) for row in cursor.fetchall() if row[1] == WebhookEvent.Status.PENDING)
    if new_ids:

        def after_commit() -> None:
            from conversations.channels.dispatch import webhook_events_dispatch

            webhook_events_dispatch(tenant.pk, new_ids)

        transaction.on_commit(after_commit)
    return new_ids


def _client_message_key(channel_type: str, message_id: str) -> str:
    import hashlib

    key = f"{channel_type}:{message_id}"
    if len(key) > 100:
        key = f"{channel_type}:{hashlib.sha256(message_id.encode()).hexdigest()[:64]}"
    return key


def _channel_conversation(tenant: Tenant, inbox: Inbox, data: dict[str, Any], contact: Any) -> Conversation:
    """The conversation an inbound message belongs to: its thread on the channel (for e-mail,
    the conversation of a message it replies to or references), else a new one."""
    conversations = Conversation.objects.for_tenant(tenant).filter(inbox=inbox)
    references = [str(ref) for ref in data.get("references") or []]
    if references:
        replied = (
            Message.objects.for_tenant(tenant)
            .filter(conversation__inbox=inbox, external_id__in=references)
            .select_related("conversation")
            .order_by("-id")
            .first()
        )
        if replied is not None:
            return replied.conversation
        root = conversations.filter(external_id__in=references).first()
        if root is not None:
            return root
    thread = str(data.get("thread") or "")[:255]
    conversation = conversations.filter(external_id=thread).first()
    if conversation is not None:
        return conversation
    title = str(data.get("subject") or getattr(contact, "name", "") or thread)[:200]
    try:
        with transaction.atomic():
            return Conversation.objects.create(
                tenant=tenant,
                inbox=inbox,
                kind=Conversation.Kind.CUSTOMER,
                contact=contact,
                external_id=thread,
                title=title,
            )
    except IntegrityError:
        return conversations.get(external_id=thread)


def attachments_summary(attachments: list[dict[str, Any]]) -> str:
    """The content of a message that is only attachments, as operators read it in the inbox:
    ``[image]``, ``[voice]``, ``[location 24.7136, 46.6753 Kingdom Centre]``…"""
    parts = []
    for item in attachments:
        kind = str(item.get("type") or "file")
        if kind == "location":
            where = ", ".join(str(item[key]) for key in ("latitude", "longitude") if item.get(key))
            label = " ".join(part for part in (where, str(item.get("name") or "")) if part)
            parts.append(f"[location {label}]" if label else "[location]")
        elif kind == "contact":
            label = " ".join(str(item[key]) for key in ("name", "phone") if item.get(key))
            parts.append(f"[contact {label}]" if label else "[contact]")
        elif item.get("filename"):
            parts.append(f"[{kind} {item['filename']}]")
        else:
            parts.append(f"[{kind}]")
    return " ".join(parts) or "[file]"


def inbound_message_receive(tenant: Tenant, inbox: Inbox, data: dict[str, Any]) -> Message:
    """A customer's message from a channel: the contact (found or created by the CRM), the
    conversation of its thread, the message (once per provider message id). A blocked
    contact's message is stored but starts no turn."""
    from crm.services import contact_resolve

    person = data.get("contact") or {}
    contact = contact_resolve(
        tenant,
        channel_type=inbox.channel_type,
        external_id=str(person.get("external_id") or data.get("thread") or ""),
        name=str(person.get("name") or ""),
        phone=str(person.get("phone") or ""),
        email=str(person.get("email") or ""),
        language=str(person.get("language") or ""),
    )
    conversation = _channel_conversation(tenant, inbox, data, contact)
    if conversation.contact_id is None:
        Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(contact=contact)
        conversation.contact = contact
    message_id = str(data["message_id"])
    already = (
        Message.objects.for_tenant(tenant)
        .filter(conversation__inbox=inbox, external_id=message_id[:255], role=Message.Role.USER)
        .first()
    )
    if already is not None:
        return already
    metadata: dict[str, Any] = {"channel": inbox.channel_type, **(data.get("metadata") or {})}
    if getattr(contact, "blocked", False):
        metadata["blocked"] = True
    text = str(data.get("text") or "").strip()
    attachments = [item for item in data.get("attachments") or [] if isinstance(item, dict) and item.get("type")][:10]
    if attachments:
        metadata["attachments"] = attachments
        if not text:
            metadata["attachment_only"] = True
    message, _created = message_post(
        tenant,
        conversation,
        content=text or attachments_summary(attachments),
        role=Message.Role.USER,
        client_message_id=_client_message_key(inbox.channel_type, message_id),
        metadata=metadata,
        content_type=str(attachments[0]["type"]) if attachments else "text",
        external_id=message_id,
    )
    return message


DELIVERY_RANK: dict[str, int] = {
    Message.DeliveryStatus.QUEUED: 0,
    Message.DeliveryStatus.SENT: 1,
    Message.DeliveryStatus.DELIVERED: 2,
    Message.DeliveryStatus.READ: 3,
}


def delivery_receipt_apply(tenant: Tenant, inbox: Inbox, data: dict[str, Any]) -> int:
    """A provider's receipt moves our messages' delivery status forward (never back: a late
    "delivered" after "read" changes nothing). Returns how many messages changed."""
    status = str(data.get("status") or "")
    now = timezone.now()
    messages = Message.objects.for_tenant(tenant).filter(
        conversation__inbox=inbox, role__in=(Message.Role.ASSISTANT, Message.Role.AGENT, Message.Role.SYSTEM)
    )
    if data.get("message_id"):
        messages = messages.filter(external_id=str(data["message_id"]))
    elif data.get("thread") and data.get("watermark"):
        from datetime import UTC, datetime

        try:
            watermark = datetime.fromtimestamp(int(data["watermark"]) / 1000, tz=UTC)
        except (TypeError, ValueError, OverflowError):
            return 0
        messages = messages.filter(conversation__external_id=str(data["thread"]), created_at__lte=watermark)
    else:
        return 0
    if status == Message.DeliveryStatus.FAILED:
        return messages.exclude(delivery_status=Message.DeliveryStatus.READ).update(
            delivery_status=Message.DeliveryStatus.FAILED
        )
    if status not in DELIVERY_RANK:
        return 0
    lower = [name for name, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    changes: dict[str, Any] = {"delivery_status": status}
    if status == Message.DeliveryStatus.DELIVERED:
        changes["delivered_at"] = now
    if status == Message.DeliveryStatus.READ:
        changes["read_at"] = now
    return messages.filter(delivery_status__in=[*lower, Message.DeliveryStatus.FAILED]).update(**changes)


def conversation_status_mirror(tenant: Tenant, inbox: Inbox, data: dict[str, Any]) -> Conversation | None:
    """The provider (Chatwoot) changed a conversation's status: Morvo's follows."""
    conversation = (
        Conversation.objects.for_tenant(tenant).filter(inbox=inbox, external_id=str(data.get("thread") or "")).first()
    )
    status = data.get("status")
    if conversation is None or status not in Conversation.Status.values:
        return None
    changes: dict[str, Any] = {"status": status}
    changes["snoozed_until"] = timezone.now() + timedelta(days=1) if status == Conversation.Status.SNOOZED else None
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**changes)
    conversation.status = status

    def after_commit() -> None:
        realtime.push_status(conversation)
        realtime.push_inbox(conversation)

    transaction.on_commit(after_commit)
    return conversation


def webhook_event_process(tenant: Tenant, event_id: int) -> str:
    """Process one stored webhook event, once: the row is locked and marked done in the same
    transaction as its effects, so a second run (a retried task, the beat) finds it done.
    Returns the event's status afterwards. An event that keeps failing is marked failed
    after :data:`WEBHOOK_EVENT_MAX_ATTEMPTS` tries (visible in the admin)."""
    try:
        return _webhook_event_process(tenant, event_id)
    except Exception as error:
        attempts = F("attempts") + 1
        WebhookEvent.objects.for_tenant(tenant).filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
            attempts=attempts, error=f"{type(error).__name__}: {error}"[:2000]
        )
        WebhookEvent.objects.for_tenant(tenant).filter(
            pk=event_id, status=WebhookEvent.Status.PENDING, attempts__gte=WEBHOOK_EVENT_MAX_ATTEMPTS
        ).update(status=WebhookEvent.Status.FAILED, processed_at=timezone.now())
        if isinstance(error, ValueError):  # ChatError, CrmError
            # Refused input (an empty text, an unusable identity) will not get better: give up now.
            WebhookEvent.objects.for_tenant(tenant).filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
                status=WebhookEvent.Status.FAILED, processed_at=timezone.now()
            )
            return WebhookEvent.Status.FAILED
        raise


def _webhook_event_process(tenant: Tenant, event_id: int) -> str:
    with transaction.atomic():
        event = (
            WebhookEvent.objects.for_tenant(tenant)
            .select_for_update(of=("self",))
            .select_related("inbox")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.status != WebhookEvent.Status.PENDING:
            return event.status if event is not None else "missing"
        inbox = event.inbox
        changes: dict[str, Any] = {"status": WebhookEvent.Status.DONE, "processed_at": timezone.now()}
        if event.kind == "message":
            changes["message"] = inbound_message_receive(tenant, inbox, event.payload)
        elif event.kind == "receipt":
            applied = delivery_receipt_apply(tenant, inbox, event.payload)
            if applied == 0 and event.attempts + 1 < WEBHOOK_EVENT_MAX_ATTEMPTS:
                # Perhaps the receipt overtook our own record of the provider's id: later.
                WebhookEvent.objects.for_tenant(tenant).filter(pk=event.pk).update(attempts=F("attempts") + 1)
                return WebhookEvent.Status.PENDING
        elif event.kind == "status":
            conversation_status_mirror(tenant, inbox, event.payload)
        else:
            changes["status"] = WebhookEvent.Status.IGNORED
        for name, value in changes.items():
            setattr(event, name, value)
        event.save(update_fields=[*changes])
        return str(event.status)


def webhook_events_retry(tenant: Tenant, older_than_seconds: int = 30, limit: int = 500) -> int:
    """Beat: events still pending a while after they arrived (their task lost, a receipt
    waiting for its message) are processed again. Returns how many were scheduled."""
    from conversations.tasks import webhook_event_process_task

    due = list(
        WebhookEvent.objects.for_tenant(tenant)
        .filter(
            status=WebhookEvent.Status.PENDING,
            received_at__lte=timezone.now() - timedelta(seconds=older_than_seconds),
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in due:
        webhook_event_process_task.apply_async((tenant.pk, event_id), expires=60)
    return len(due)


# --- Inboxes ------------------------------------------------------------------------------


class InboxConfigError(ValueError):
    """The inbox cannot work with this config: ``problems`` maps each config key to why."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems.items()))
        self.problems = problems


def inbox_create(tenant: Tenant, *, channel_type: str, name: str, config: dict[str, Any]) -> Inbox:
    """A channel inbox (WhatsApp, Telegram, Instagram/Messenger, SMS, e-mail, Chatwoot) with
    its provider config, checked before anything is stored. Its webhook URL carries the
    inbox's generated secret token."""
    from conversations.channels import adapter_for

    adapter = adapter_for(channel_type)
    if adapter is None:
        raise InboxConfigError({"channel_type": gettext("Not a channel that takes webhooks.")})
    if not isinstance(config, dict):
        raise InboxConfigError({"config": gettext("The configuration is a JSON object.")})
    problems = adapter.config_problems(config)
    if problems:
        raise InboxConfigError(problems)
    name = (name or "").strip()[:120]
    if not name:
        raise InboxConfigError({"name": gettext("This field is required.")})
    if Inbox.objects.for_tenant(tenant).filter(name=name).exists():
        raise InboxConfigError({"name": gettext("An inbox with this name exists.")})
    try:
        with transaction.atomic():
            return Inbox.objects.for_tenant(tenant).create(  # type: ignore[no-any-return]
                tenant=tenant, name=name, channel_type=channel_type, config=config
            )
    except IntegrityError as error:
        raise InboxConfigError({"name": gettext("An inbox with this name exists.")}) from error


def inbox_delete(tenant: Tenant, inbox_id: int) -> bool:
    """Remove an inbox: deleted when it never had a conversation, otherwise deactivated (its
    webhooks answer 404 from now on, its conversations stay). Returns True when deleted."""
    with transaction.atomic():
        inbox = Inbox.objects.for_tenant(tenant).select_for_update().get(pk=inbox_id)
        if Conversation.objects.for_tenant(tenant).filter(inbox=inbox).exists():
            inbox.is_active = False
            inbox.save(update_fields=["is_active"])  # its post_save clears the webhooks' inbox cache
            return False
        inbox.delete()
        return True


# --- Empty web-visitor conversations ----------------------------------------------------------

EMPTY_VISITOR_PRUNE_BATCH_SIZE = 500
EMPTY_VISITOR_PRUNE_MAX_BATCHES = 20


def _conversation_references() -> list[Any]:
    """One ``Exists`` per kind of row pointing at a conversation: its messages, state and
    outbox here, and what the other apps keep (agent runs, follow-ups, appointments, stock
    alerts). Read from the model's relations, so a table added later protects its rows too,
    and this app never imports another app's models."""
    from django.db.models import Exists, ForeignObjectRel, OuterRef

    references = []
    for relation in Conversation._meta.get_fields(include_hidden=True):
        if isinstance(relation, ForeignObjectRel) and relation.auto_created and not relation.concrete:
            rows = relation.related_model._base_manager.filter(**{relation.field.name: OuterRef("pk")})
            references.append(Exists(rows))
    return references


def empty_visitor_conversations_prune(
    older_than_hours: int | None = None,
    *,
    batch_size: int = EMPTY_VISITOR_PRUNE_BATCH_SIZE,
    max_batches: int = EMPTY_VISITOR_PRUNE_MAX_BATCHES,
) -> int:
    """Delete the public chat's conversations nobody ever wrote in, created more than
    ``older_than_hours`` (default ``CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS``; at least 1) ago.
    Returns how many were deleted.

    The chat page opens a conversation on a visitor's first visit (its socket needs the id),
    so every crawler and link preview leaves one. Deleted only when nothing points at it: no
    message of any role, and no state, outbox row, agent run, follow-up, appointment or stock
    alert either (those would lose their way back to the visitor, so such a conversation is
    kept whatever its age). A contact the visitor's profile form linked is on the
    conversation's side of the link and stays. Channel conversations (no ``visitor_id``) and
    companion conversations are never touched.

    Maintenance across tenants (like ``morvo.services.throttle_windows_prune``): it reads no
    tenant's data and only deletes. Bounded: at most ``max_batches`` batches of
    ``batch_size`` rows, each in its own transaction; a backlog is finished by later runs.
    Safe to run twice or concurrently: rows are claimed with ``FOR UPDATE SKIP LOCKED`` (a
    message being written takes a lock on its conversation, so that one is skipped), and the
    claimed rows are checked again in a new statement before the delete, which sees whatever
    was committed before the claim; a message written after the claim waits and then fails
    rather than being deleted.
    """
    from django.conf import settings

    if older_than_hours is None:
        older_than_hours = settings.CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS
    # Whatever the setting says, a conversation opened within the hour stays: its visitor may
    # still be on the page, about to write.
    older_than_hours = max(older_than_hours, 1)
    cutoff = timezone.now() - timedelta(hours=older_than_hours)

    def prunable() -> Any:
        conversations = (
            Conversation.objects.all_tenants()
            .filter(kind=Conversation.Kind.CUSTOMER, created_at__lt=cutoff)
            .exclude(visitor_id="")
        )
        for reference in _conversation_references():
            conversations = conversations.filter(~reference)
        return conversations

    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic():
            claimed = list(
                prunable().order_by("id").select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch_size]
            )
            if claimed:
                _, per_model = prunable().filter(pk__in=claimed).delete()
                deleted += per_model.get(Conversation._meta.label, 0)
        if len(claimed) < batch_size:
            break
    if deleted:
        logger.info("deleted %s empty web-visitor conversations older than %s hours", deleted, older_than_hours)
    return deleted
