"""The operators' back office: inboxes, the live conversations list and the conversation page.

Every action on a conversation is a POST (with CSRF) that calls a service; refusals become
admin messages and write nothing. Viewers read everything and act on nothing (403).
Another tenant's conversation answers exactly as a missing one: 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations import selectors, services
from conversations.channels import adapter_for
from conversations.channels.base import config_masked
from conversations.models import Conversation, Inbox, Message, OutboxMessage, WebhookEvent
from morvo import tenancy
from morvo.admin_mixins import TenantScopedModelAdmin, TenantScopedModelForm, can_view
from morvo.models import Membership, Tenant

# Who may work the inbox: viewers only read.
OPERATING_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.AGENT})
THREAD_LIMIT = 500


def can_operate(request: HttpRequest) -> bool:
    membership = getattr(request, "membership", None)
    return bool(request.user.is_superuser or (membership is not None and membership.role in OPERATING_ROLES))


def _members(tenant: Tenant | None) -> list[Membership]:
    if tenant is None:
        return []
    return list(Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email", "user_id"))


def _person(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.email or user.get_username())


class InboxForm(TenantScopedModelForm):
    """The config is edited as JSON with every secret masked: a masked value left as it was
    keeps the stored secret, a new value replaces it. Channel inboxes' configs are checked
    by their adapter before they are saved."""

    config = forms.JSONField(label=_("configuration"), required=False, widget=forms.Textarea(attrs={"rows": 10}))

    class Meta:
        model = Inbox
        fields = ["name", "channel_type", "is_active", "config"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["config"] = config_masked(self.instance.config or {})

    def clean_config(self) -> dict[str, Any]:
        value = self.cleaned_data.get("config") or {}
        if not isinstance(value, dict):
            raise ValidationError(_("The configuration is a JSON object."))
        stored = (self.instance.config or {}) if self.instance.pk is not None else {}
        masked = config_masked(stored)
        # A secret shown masked and sent back unchanged keeps its stored value.
        return {key: stored[key] if key in stored and item == masked.get(key) else item for key, item in value.items()}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        adapter = adapter_for(cleaned.get("channel_type") or "")
        if adapter is not None and "config" in cleaned:
            for key, reason in adapter.config_problems(cleaned["config"]).items():
                self.add_error("config", f"{key}: {reason}")
        return cleaned


@admin.register(Inbox)
class InboxAdmin(TenantScopedModelAdmin):
    form = InboxForm
    list_display = ["name", "channel_type", "is_active", "secret_hint", "created_at"]
    list_filter = ["channel_type", "is_active"]
    search_fields = ["name"]
    fields = ["name", "channel_type", "is_active", "config", "secret_hint", "webhook_url"]
    readonly_fields = ["secret_hint", "webhook_url"]
    ordering = ["name", "id"]

    @admin.display(description=_("secret"))
    def secret_hint(self, obj: Inbox) -> str:
        # The secret signs webhooks: only its first characters, enough to tell two apart.
        return f"{obj.secret[:4]}…" if obj.secret else "—"

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, obj: Inbox) -> str:
        if obj.pk is None or adapter_for(obj.channel_type) is None:
            return "—"
        return reverse("channel-webhook", args=[obj.channel_type, obj.secret])


@admin.register(OutboxMessage)
class OutboxMessageAdmin(TenantScopedModelAdmin):
    """What Morvo sends to the channels. Dead letters (delivery failed N times, or was refused)
    wait here for a person: fix the cause (a token, a number), then retry them."""

    list_display = ["id", "kind", "status", "inbox", "conversation", "attempts", "next_attempt_at", "short_error"]
    list_filter = ["status", "kind", "inbox__channel_type"]
    list_select_related = ["inbox", "conversation"]
    ordering = ["-id"]
    fields = (
        "kind",
        "status",
        "inbox",
        "conversation",
        "message",
        "payload",
        "attempts",
        "next_attempt_at",
        "last_error",
        "provider_message_id",
        "used_template",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields
    actions = ["retry_dead_letters"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Rows are never edited; the retry action needs an operating role (see the action).
        return can_operate(request) and obj is None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("last error"))
    def short_error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:80]

    @admin.action(description=_("Retry selected dead letters"), permissions=["change"])
    def retry_dead_letters(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        retried = 0
        for row in queryset.filter(status=OutboxMessage.Status.DEAD).select_related("tenant"):
            with tenancy.tenant_context(row.tenant):
                retried += int(services.outbox_retry(row.tenant, row.pk))
        self.message_user(request, gettext("%(count)d dead letters queued again.") % {"count": retried})


@admin.register(WebhookEvent)
class WebhookEventAdmin(TenantScopedModelAdmin):
    """What the providers' webhooks brought, once each; failed events show why."""

    list_display = ["id", "inbox", "kind", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "kind", "inbox__channel_type"]
    list_select_related = ["inbox"]
    ordering = ["-id"]
    fields = (
        "inbox",
        "kind",
        "dedup_key",
        "status",
        "attempts",
        "error",
        "payload",
        "message",
        "received_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AssigneeFilter(admin.SimpleListFilter):
    """Members of the current tenant only (Django's FK filter would list every user)."""

    title = _("assignee")
    parameter_name = "assignee"
    UNASSIGNED = "none"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        members = _members(getattr(request, "tenant", None))
        return [(self.UNASSIGNED, str(_("Unassigned")))] + [
            (str(member.user_id), _person(member.user)) for member in members
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        value = self.value()
        if not value:
            return queryset
        if value == self.UNASSIGNED:
            return queryset.filter(assignee__isnull=True)
        member_ids = {str(member.user_id) for member in _members(getattr(request, "tenant", None))}
        if value not in member_ids:
            return queryset.none()
        return queryset.filter(assignee_id=int(value))


class InboxFilter(admin.SimpleListFilter):
    """The current tenant's inboxes, read explicitly through ``for_tenant``."""

    title = _("inbox")
    parameter_name = "inbox"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return []
        return [(str(inbox.pk), str(inbox)) for inbox in Inbox.objects.for_tenant(tenant).order_by("name", "id")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(inbox_id=int(value))


def _priority_rank() -> Case:
    return Case(
        *[When(priority=priority, then=Value(rank)) for priority, rank in Conversation.PRIORITY_RANK.items()],
        default=Value(len(Conversation.PRIORITY_RANK)),
        output_field=IntegerField(),
    )


@admin.register(Conversation)
class ConversationAdmin(TenantScopedModelAdmin):
    """The live conversations list (customer conversations; a companion chat is its owner's alone)."""

    list_display = ["conversation_title", "status_badge", "priority_badge", "assignee_name", "last_activity"]
    list_filter = ["status", "priority", InboxFilter, "handled_by", AssigneeFilter]
    search_fields = ["title", "contact__name", "contact__email", "contact__phone"]
    list_select_related = ["contact", "inbox", "assignee"]
    list_per_page = 50
    change_list_template = "admin/conversations/conversation_change_list.html"
    live_template = "admin/conversations/conversation_live.html"

    # --- queryset -------------------------------------------------------------------------

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return ("priority_rank", "-last_activity_at", "-id")

    def _openable_queryset(self, request: HttpRequest) -> Any:
        """Every customer conversation the request may open by id, empty ones included."""
        queryset = Conversation.objects.all_tenants().filter(kind=Conversation.Kind.CUSTOMER)
        if request.user.is_superuser:
            return queryset
        tenant = getattr(request, "tenant", None)
        return queryset.filter(tenant=tenant) if tenant is not None else queryset.none()

    def get_queryset(self, request: HttpRequest) -> Any:
        """The live list, its filters' counts and the queue's counts: only conversations
        someone wrote in (see selectors.conversations_listed_for_operators)."""
        # Not the mixin's: it orders before the rank annotation exists.
        return (
            selectors.conversations_listed_for_operators(self._openable_queryset(request))
            .annotate(priority_rank=_priority_rank())
            .order_by(*self.get_ordering(request))
        )

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Opened by id (history, delete): an empty conversation is still there to open.
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return self._conversation_or_404(request, object_id)
        except Http404:
            return None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        """Every word must match the title, the contact, or be one of the labels."""
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            word = bit.strip()
            if not word:
                continue
            queryset = queryset.filter(
                Q(title__icontains=word)
                | Q(contact__name__icontains=word)
                | Q(contact__email__icontains=word)
                | Q(contact__phone__icontains=word)
                | Q(labels__contains=[word.lower()])
            )
        return queryset, False

    # --- permissions ----------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # conversations arrive through the inboxes

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_operate(request)

    # --- columns --------------------------------------------------------------------------

    @admin.display(description=_("conversation"), ordering="title")
    def conversation_title(self, obj: Conversation) -> str:
        # What identifies the conversation shares one cell (contact, labels, unread count) so
        # the list fits beside the admin's two sidebars; the live script updates the parts.
        unread = '<span class="operator-unread" data-field="unread"{hidden}>{{}}</span>'.format(
            hidden="" if obj.unread_for_agents else " hidden"
        )
        return format_html(
            '<span class="operator-title" data-conversation-id="{}">{}</span> '
            + unread
            + '<span class="operator-subline"><span data-field="contact">{}</span>'
            + ' <span class="operator-labels" data-field="labels">{}</span></span>',
            obj.pk,
            str(obj),
            obj.unread_for_agents,
            str(obj.contact) if obj.contact_id else "",
            " · ".join(obj.labels),
        )

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Conversation) -> str:
        return format_html(
            '<span class="operator-badge operator-status--{}" data-field="status">{}</span> '
            '<span class="operator-badge operator-handled--{}" data-field="handled_by">{}</span>',
            obj.status,
            obj.get_status_display(),
            obj.handled_by,
            obj.get_handled_by_display(),
        )

    @admin.display(description=_("priority"), ordering="priority_rank")
    def priority_badge(self, obj: Conversation) -> str:
        return format_html(
            '<span class="operator-badge operator-priority--{}" data-field="priority">{}</span>',
            obj.priority,
            obj.get_priority_display(),
        )

    @admin.display(description=_("assignee"), ordering="assignee__email")
    def assignee_name(self, obj: Conversation) -> str:
        return format_html('<span data-field="assignee">{}</span>', _person(obj.assignee) or "—")

    @admin.display(description=_("last activity"), ordering="last_activity_at")
    def last_activity(self, obj: Conversation) -> str:
        moment = timezone.localtime(obj.last_activity_at)
        return format_html(
            '<time datetime="{}" data-field="last_activity">{}</time>',
            moment.isoformat(),
            # Today's activity by the time alone: the column stays narrow.
            date_format(moment, "H:i" if moment.date() == timezone.localdate() else "SHORT_DATE_FORMAT"),
        )

    # --- the list -------------------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {
            "title": _("Live conversations"),
            **(extra_context or {}),
            **self._counts(request),
            **self._live_labels(),
        }
        return super().changelist_view(request, extra_context)

    def _counts(self, request: HttpRequest) -> dict[str, Any]:
        """Per status over every conversation; per priority over the unresolved ones (the queue)."""
        scoped = self.get_queryset(request).order_by()
        by_status = dict(scoped.values_list("status").annotate(total=Count("id")).order_by())
        by_priority = dict(
            scoped.exclude(status=Conversation.Status.RESOLVED)
            .values_list("priority")
            .annotate(total=Count("id"))
            .order_by()
        )
        priorities = sorted(Conversation.Priority, key=lambda priority: Conversation.PRIORITY_RANK[priority])
        return {
            "status_counts": [
                (status.value, status.label, by_status.get(status.value, 0)) for status in Conversation.Status
            ],
            "priority_counts": [
                (priority.value, priority.label, by_priority.get(priority.value, 0)) for priority in priorities
            ],
        }

    def _live_labels(self) -> dict[str, Any]:
        return {
            "operator_labels": {
                "status": {choice.value: str(choice.label) for choice in Conversation.Status},
                "priority": {choice.value: str(choice.label) for choice in Conversation.Priority},
                "handled_by": {choice.value: str(choice.label) for choice in Conversation.HandledBy},
                "role": {choice.value: str(choice.label) for choice in Message.Role},
            }
        }

    # --- the conversation page ------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="{}_{}_act".format(*info),
            ),
        ]
        return custom + super().get_urls()

    def _conversation_or_404(self, request: HttpRequest, object_id: str) -> Conversation:
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            raise Http404 from None
        conversation = (
            self._openable_queryset(request)
            .select_related("tenant", "inbox", "contact", "assignee")
            .filter(pk=pk)
            .first()
        )
        if conversation is None:
            raise Http404
        return conversation

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The live conversation page replaces the edit form: operators change a
        conversation through the actions (services), never by editing its row."""
        conversation = self._conversation_or_404(request, object_id)
        if not can_view(request):
            raise PermissionDenied
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        tenant = conversation.tenant
        with tenancy.tenant_context(tenant):
            thread = list(
                Message.objects.for_tenant(tenant)
                .filter(conversation=conversation)
                .select_related("author")
                .order_by("-id")[:THREAD_LIMIT]
            )
        thread.reverse()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(conversation),
            "subtitle": None,
            "conversation": conversation,
            "thread": thread,
            "thread_truncated": len(thread) == THREAD_LIMIT,
            "last_message_id": thread[-1].pk if thread else 0,
            "can_act": can_operate(request),
            "members": _members(tenant),
            "priorities": Conversation.Priority.choices,
            "labels_text": ", ".join(conversation.labels),
            "snooze_minimum": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "has_view_permission": True,
            **self._live_labels(),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.live_template, context)

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        conversation = self._conversation_or_404(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_operate(request):
            raise PermissionDenied
        handler = self.ACTIONS.get(action)
        if handler is None:
            raise Http404
        tenant = conversation.tenant
        try:
            with tenancy.tenant_context(tenant):
                done = handler(self, request, tenant, conversation)
        except services.ChatError as error:
            messages.error(request, str(error))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, done)
        return HttpResponseRedirect(reverse("admin:conversations_conversation_change", args=[conversation.pk]))

    # Each returns the success message; raises ChatError or ValidationError to refuse.

    def _take_over(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.conversation_take_over(tenant, conversation.pk, request.user)
        return gettext("You took over the conversation: the AI stops replying.")

    def _hand_back(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.conversation_hand_back(tenant, conversation.pk)
        return gettext("The conversation is back with the AI.")

    def _reply(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.agent_reply(tenant, conversation, request.user, request.POST.get("content", ""))
        return gettext("Reply sent.")

    def _note(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.note_add(tenant, conversation, request.user, request.POST.get("content", ""))
        return gettext("Private note added.")

    def _assign(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        raw = request.POST.get("assignee", "").strip()
        if not raw:
            services.conversation_update(tenant, conversation.pk, assignee=None)
            return gettext("The conversation is unassigned.")
        if not raw.isdigit():
            raise services.ChatError("invalid_assignee", gettext("The assignee is not a member of this business."))
        user = get_user_model().objects.filter(pk=int(raw)).first()
        if user is None:
            raise services.ChatError("invalid_assignee", gettext("The assignee is not a member of this business."))
        services.conversation_update(tenant, conversation.pk, assignee=user)
        return gettext("Assigned to %(person)s.") % {"person": _person(user)}

    def _label(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        labels = [label for label in request.POST.get("labels", "").replace("،", ",").split(",")]
        services.conversation_update(tenant, conversation.pk, labels=labels)
        return gettext("Labels saved.")

    def _snooze(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        raw = request.POST.get("snoozed_until", "").strip()
        until = None
        if raw:
            try:
                until = parse_datetime(raw)
            except ValueError:
                until = None
            if until is None:
                raise services.ChatError("invalid_snooze", gettext("Enter a valid date and time."))
            if timezone.is_naive(until):
                until = timezone.make_aware(until)
        services.conversation_update(tenant, conversation.pk, status=Conversation.Status.SNOOZED, snoozed_until=until)
        return gettext("Snoozed.")

    def _resolve(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.conversation_update(tenant, conversation.pk, status=Conversation.Status.RESOLVED)
        return gettext("Resolved.")

    def _reopen(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.conversation_update(tenant, conversation.pk, status=Conversation.Status.OPEN)
        return gettext("Reopened.")

    def _priority(self, request: HttpRequest, tenant: Tenant, conversation: Conversation) -> str:
        services.conversation_update(tenant, conversation.pk, priority=request.POST.get("priority", ""))
        return gettext("Priority changed.")

    ACTIONS: dict[str, Callable[[ConversationAdmin, HttpRequest, Tenant, Conversation], str]] = {
        "take-over": _take_over,
        "hand-back": _hand_back,
        "reply": _reply,
        "note": _note,
        "assign": _assign,
        "label": _label,
        "snooze": _snooze,
        "resolve": _resolve,
        "reopen": _reopen,
        "priority": _priority,
    }
