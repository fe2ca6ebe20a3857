from __future__ import annotations

import secrets
from typing import ClassVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.inbox_secrets import SECRET_CONFIG_KEYS
from morvo.fields import SecretsJSONField
from morvo.tenancy import TenantScopedModel


def _inbox_secret() -> str:
    return secrets.token_urlsafe(24)


class Inbox(TenantScopedModel):
    """Where conversations arrive: the companion, the public web chat, a messaging channel."""

    class ChannelType(models.TextChoices):
        COMPANION = "companion", _("Companion")
        WEB = "web", _("Web chat")
        WHATSAPP = "whatsapp", _("WhatsApp")
        TELEGRAM = "telegram", _("Telegram")
        INSTAGRAM = "instagram", _("Instagram / Messenger")
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        CHATWOOT = "chatwoot", _("Chatwoot")
        API = "api", _("API")

    name = models.CharField(_("name"), max_length=120)
    channel_type = models.CharField(_("channel"), max_length=12, choices=ChannelType.choices)
    config = SecretsJSONField(_("configuration"), default=dict, blank=True, secret_keys=SECRET_CONFIG_KEYS)
    secret = models.CharField(_("secret"), max_length=64, default=_inbox_secret, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="inbox_unique_tenant_name")]
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_type_display()})"


class Conversation(TenantScopedModel):
    class Kind(models.TextChoices):
        COMPANION = "companion", _("Companion")
        CUSTOMER = "customer", _("Customer")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        SNOOZED = "snoozed", _("Snoozed")
        RESOLVED = "resolved", _("Resolved")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    class HandledBy(models.TextChoices):
        AI = "ai", _("AI")
        HUMAN = "human", _("Human")

    PRIORITY_RANK: ClassVar[dict[str, int]] = {"urgent": 0, "high": 1, "medium": 2, "low": 3}

    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="conversations")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The public web chat's visitor, identified by a signed cookie.
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.LOW)
    handled_by = models.CharField(_("handled by"), max_length=5, choices=HandledBy.choices, default=HandledBy.AI)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    labels = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    language = models.CharField(_("language"), max_length=5, blank=True)
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    unread_for_agents = models.PositiveIntegerField(default=0)
    unread_for_user = models.PositiveIntegerField(default=0)
    # The thread on the channel: a WhatsApp wa_id, a Telegram chat id, a Chatwoot conversation
    # id, the first Message-ID of an e-mail thread. Empty for the web chat and the companion.
    external_id = models.CharField(_("channel thread"), max_length=255, blank=True, default="")
    # The customer's last message on the channel (WhatsApp's 24-hour window counts from it).
    customer_last_message_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        indexes = [models.Index(fields=["tenant", "status", "last_activity_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="companion") | models.Q(staff_user__isnull=False),
                name="companion_conversation_has_staff_user",
            ),
            models.UniqueConstraint(
                fields=["inbox", "external_id"],
                condition=~models.Q(external_id=""),
                name="conversation_unique_channel_thread",
            ),
        ]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return self.title or f"#{self.pk}"


class Message(TenantScopedModel):
    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")
        NOTE = "note", _("Private note")

    class DeliveryStatus(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    # What a customer (visitor, channel) may see: never private notes.
    PUBLIC_ROLES: ClassVar[tuple[str, ...]] = (Role.USER, Role.ASSISTANT, Role.AGENT, Role.SYSTEM)
    MAX_CONTENT_LENGTH: ClassVar[int] = 4000

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    content = models.TextField(_("content"))
    content_type = models.CharField(_("content type"), max_length=20, default="text")
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    client_message_id = models.CharField(max_length=100, null=True, blank=True)
    # The user message an assistant reply answers: at most one reply per message.
    reply_to = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    delivery_status = models.CharField(
        _("delivery"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.SENT
    )
    # The provider's id of this message (inbound: theirs; outbound: the id their API returned),
    # which delivery receipts and e-mail threading refer to.
    external_id = models.CharField(_("provider message id"), max_length=255, blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                condition=models.Q(client_message_id__isnull=False),
                name="message_unique_client_id",
            ),
            models.UniqueConstraint(
                fields=["reply_to"],
                condition=models.Q(role="assistant", reply_to__isnull=False),
                name="message_one_reply_per_message",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "id"]),
            models.Index(fields=["tenant", "external_id"], name="message_tenant_external_id"),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class ConversationState(TenantScopedModel):
    """State of a multi-turn flow (a booking's slots…). ``version`` makes writes
    compare-and-swap, so two workers never overwrite each other."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="state")
    data = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("conversation state")
        verbose_name_plural = _("conversation states")

    def __str__(self) -> str:
        return f"state of {self.conversation_id} v{self.version}"


class WebhookEvent(TenantScopedModel):
    """One provider event accepted by a webhook, stored before it is acknowledged and then
    processed in Celery. ``(inbox, dedup_key)`` is unique: a provider retrying a webhook (or
    an attacker replaying one) finds the event already there and nothing happens twice."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="webhook_events")
    dedup_key = models.CharField(max_length=255)
    kind = models.CharField(_("kind"), max_length=20)
    payload = models.JSONField(default=dict)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["inbox", "dedup_key"], name="webhook_event_unique_dedup")]
        indexes = [models.Index(fields=["status", "received_at"], name="webhook_event_pending")]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.kind} {self.dedup_key}"


class OutboxMessage(TenantScopedModel):
    """Something to deliver to a channel provider: a message, or (Chatwoot) a private note,
    labels or contact attributes. Delivered with exponential-backoff retries; after
    ``max_attempts`` failures it is a dead letter, retried only by a person."""

    class Kind(models.TextChoices):
        MESSAGE = "message", _("Message")
        NOTE = "note", _("Private note")
        LABELS = "labels", _("Labels")
        ATTRIBUTES = "attributes", _("Contact attributes")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEAD = "dead", _("Dead letter")

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="outbox")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="outbox")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="outbox")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.MESSAGE)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    used_template = models.CharField(_("template"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind"],
                condition=models.Q(message__isnull=False),
                name="outbox_one_row_per_message",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            # An inbox's pump claims its due rows oldest first.
            models.Index(
                fields=["inbox", "next_attempt_at", "id"],
                condition=models.Q(status="pending"),
                name="outbox_inbox_due",
            ),
        ]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"
