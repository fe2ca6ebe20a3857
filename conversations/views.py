"""The chat pages: the staff companion (``/app/chat/``) and the public customer chat
(``/c/<tenant-slug>/``). Thin: reads through selectors and the scoped managers, writes
through services; the live part is the websocket (docs/websocket.md) driven by
static/conversations/chat.js."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Substr
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from conversations import selectors, services
from conversations.models import Conversation, Message
from conversations.visitors import COOKIE_MAX_AGE, COOKIE_NAME, COOKIE_SALT, new_visitor_id, visitor_id_from_cookie
from crm import services as crm_services
from morvo.models import Tenant

HISTORY_LIMIT = 100
SIDEBAR_LIMIT = 50
DEFAULT_BRAND_COLOR = "#0f766e"
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# --------------------------------------------------------------------------- presentation


def _safe_url(value: Any) -> str | None:
    """Only http(s) links leave the page: never ``javascript:`` or ``data:``."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return value.strip()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


# Generated text a user may copy: posts, image ideas, campaign plans, SEO suggestions.
ATTACHMENT_TYPES = ("content", "image_idea", "campaign_plan", "seo")


def message_view(message: Message) -> dict[str, Any]:
    """A message as the template shows it: metadata checked and reduced to what is drawn.
    Everything stays text; the template escapes it."""
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    kpis = [
        {"label": _text(kpi.get("label")), "value": _text(kpi.get("value")), "unit": _text(kpi.get("unit"))}
        for kpi in metadata.get("kpis") or []
        if isinstance(kpi, dict)
    ]
    attachments = [
        {"title": _text(item.get("title")), "text": _text(item.get("text"))}
        for item in metadata.get("attachments") or []
        if isinstance(item, dict) and item.get("type", "content") in ATTACHMENT_TYPES and _text(item.get("text"))
    ]
    sources = []
    for source in metadata.get("sources") or []:
        if not isinstance(source, dict):
            continue
        url = _safe_url(source.get("url"))
        title = _text(source.get("title")) or url
        if title:
            # A document of the knowledge base has a title and no web address: cited as text.
            sources.append({"title": title, "url": url})
    suggestions = [item for item in metadata.get("suggestions") or [] if isinstance(item, str) and item.strip()]
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at,
        "failure": bool(metadata.get("failure")),
        "kpis": kpis,
        "attachments": attachments,
        "sources": sources,
        "suggestions": suggestions,
    }


def _history(tenant: Tenant, conversation: Conversation, *, include_notes: bool) -> list[dict[str, Any]]:
    """The last ``HISTORY_LIMIT`` messages, oldest first; suggestions only on a last reply."""
    messages = Message.objects.for_tenant(tenant).filter(conversation=conversation)
    if not include_notes:
        messages = messages.filter(role__in=Message.PUBLIC_ROLES)
    latest = list(messages.select_related("author").order_by("-id")[:HISTORY_LIMIT])
    views = [message_view(message) for message in reversed(latest)]
    for view in views[:-1]:
        view["suggestions"] = []
    if views and views[-1]["role"] not in (Message.Role.ASSISTANT, Message.Role.AGENT):
        views[-1]["suggestions"] = []
    return views


def chat_strings(tenant: Tenant, *, perspective: str) -> dict[str, Any]:
    """Every text chat.js shows, translated here (the page hands them over as JSON)."""
    companion = perspective == "staff"
    assistant = gettext("Morvo") if companion else gettext("%(tenant)s assistant") % {"tenant": tenant.name}
    return {
        "names": {
            "user": gettext("You"),
            "assistant": assistant,
            "agent": gettext("%(tenant)s team") % {"tenant": tenant.name},
            "note": gettext("Private note"),
        },
        "connection": {
            "connecting": gettext("Connecting…"),
            "online": gettext("Online"),
            "reconnecting": gettext("Reconnecting…"),
            "offline": gettext("Offline"),
        },
        "typing": {
            "assistant": gettext("%(name)s is writing…") % {"name": assistant},
            "agent": gettext("A team member is typing…"),
        },
        "errors": {
            "rate_limited": gettext("You are sending messages too quickly. Please wait a moment, then try again."),
            "content_too_long": gettext("This message is too long. Please shorten it."),
            "empty_content": gettext("Write a message first."),
            "invalid_content": gettext("This message could not be sent."),
            "closed": gettext("This conversation is no longer available. Reload the page to continue."),
            "generic": gettext("Something went wrong. Please try again."),
        },
        "sending": gettext("Sending…"),
        "notSent": gettext("Not sent."),
        "retry": gettext("Retry"),
        "copy": gettext("Copy"),
        "copied": gettext("Copied"),
        "sources": gettext("Sources"),
        "generatedContent": gettext("Generated content"),
        "personJoined": gettext("A person from %(tenant)s is in the conversation.") % {"tenant": tenant.name},
        "aiBack": gettext("The assistant is answering again."),
        "tooLong": gettext("Too long by %(count)s characters"),
    }


def _chat_context(
    request: HttpRequest, tenant: Tenant, conversation: Conversation, *, perspective: str
) -> dict[str, Any]:
    history = _history(tenant, conversation, include_notes=perspective == "staff")
    strings = chat_strings(tenant, perspective=perspective)
    for view in history:
        view["author_label"] = strings["names"].get(view["role"], "")
    return {
        "conversation": conversation,
        "history": history,
        "chat_strings": strings,
        "person_text": strings["personJoined"],
        "chat_config": {
            "conversationId": conversation.pk,
            "socketPath": f"/ws/chat/{conversation.pk}/",
            "lastMessageId": history[-1]["id"] if history else 0,
            "maxLength": Message.MAX_CONTENT_LENGTH,
            "perspective": perspective,
            "handledBy": conversation.handled_by,
        },
    }


# --------------------------------------------------------------------------- companion


def _own_companion_conversations(request: Any) -> Any:
    """The user's own companion conversations, newest first, each with its first question
    (``preview``) to name it in the sidebar when it has no title."""
    first_question = (
        Message.objects.for_tenant(request.tenant)
        .filter(conversation=OuterRef("pk"), role=Message.Role.USER)
        .order_by("id")
        .values("content")[:1]
    )
    return (
        Conversation.objects.for_tenant(request.tenant)
        .filter(kind=Conversation.Kind.COMPANION, staff_user=request.user)
        .annotate(preview=Substr(Subquery(first_question), 1, 80))
        .order_by("-last_activity_at", "-id")[:SIDEBAR_LIMIT]
    )


def _no_tenant(request: HttpRequest) -> HttpResponse:
    return render(request, "conversations/no_tenant.html", status=403)


@login_required
@require_GET
def companion_list(request: Any) -> HttpResponse:
    if request.tenant is None:
        return _no_tenant(request)
    context = {"conversations": _own_companion_conversations(request), "current": None}
    return render(request, "conversations/companion.html", context)


@login_required
@require_POST
def companion_new(request: Any) -> HttpResponse:
    if request.tenant is None:
        return _no_tenant(request)
    conversation = services.conversation_start_companion(request.tenant, request.user)
    return redirect("companion-detail", conversation_id=conversation.pk)


@login_required
@require_GET
def companion_detail(request: Any, conversation_id: int) -> HttpResponse:
    if request.tenant is None:
        return _no_tenant(request)
    conversation = selectors.conversation_for_staff(request.tenant, conversation_id)
    # A colleague's companion chat, a customer conversation or another tenant's: all alike.
    if (
        conversation is None
        or conversation.kind != Conversation.Kind.COMPANION
        or conversation.staff_user_id != request.user.pk
    ):
        raise Http404
    context = {
        **_chat_context(request, request.tenant, conversation, perspective="staff"),
        "conversations": _own_companion_conversations(request),
        "current": conversation,
    }
    return render(request, "conversations/companion.html", context)


# --------------------------------------------------------------------------- public chat


class VisitorProfileForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=200, required=False, strip=True)
    email = forms.EmailField(label=_("Your e-mail"), max_length=254, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and not cleaned.get("name") and not cleaned.get("email"):
            raise forms.ValidationError(_("Enter your name or your e-mail."), code="empty")
        return cleaned


def _public_tenant(slug: str) -> Tenant:
    return get_object_or_404(Tenant, slug=slug, is_active=True)


def _visitor_id(request: HttpRequest) -> str | None:
    # The websocket checks the cookie with visitors.visitor_id_from_cookie: read it the same way.
    return visitor_id_from_cookie(request.COOKIES.get(COOKIE_NAME))


def _set_visitor_cookie(request: HttpRequest, response: HttpResponse, visitor_id: str) -> None:
    secure = request.is_secure()
    # Signed exactly as visitors.visitor_id_from_cookie (and so the websocket) verifies it.
    # Not response.set_signed_cookie: Django 5.2.19 signs that with a new salt scheme
    # ("django.http.cookies.v2:…") which visitor_id_from_cookie does not accept.
    value = signing.get_cookie_signer(salt=COOKIE_NAME + COOKIE_SALT).sign(visitor_id)
    # Inside an iframe on the tenant's own site the cookie is third-party: browsers only
    # send it with SameSite=None, which they accept only over https.
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="None" if secure else "Lax",
        secure=secure,
    )


def _brand_color(tenant: Tenant) -> str:
    color = tenant.primary_color or ""
    return color if _HEX_COLOR.match(color) else DEFAULT_BRAND_COLOR


def _visitor_page(
    request: HttpRequest,
    tenant: Tenant,
    conversation: Conversation,
    form: VisitorProfileForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        **_chat_context(request, tenant, conversation, perspective="visitor"),
        "tenant": tenant,
        "brand_color": _brand_color(tenant),
        "profile_form": form,
        "profile_saved": request.GET.get("saved") == "1",
    }
    return render(request, "conversations/visitor.html", context, status=status)


@xframe_options_exempt
@require_GET
def visitor_chat(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _public_tenant(slug)
    visitor_id = _visitor_id(request) or new_visitor_id()
    conversation = selectors.visitor_conversation_latest(tenant, visitor_id)
    if conversation is None:
        conversation = services.conversation_start_visitor(tenant, visitor_id)
    contact = conversation.contact
    form = VisitorProfileForm(initial={"name": contact.name, "email": contact.email} if contact else None)
    response = _visitor_page(request, tenant, conversation, form)
    _set_visitor_cookie(request, response, visitor_id)
    return response


def _same_origin(request: HttpRequest) -> bool:
    """The profile form is posted from our own page, possibly inside the tenant's iframe,
    where Django's CSRF cookie (SameSite=Lax) is not sent. Browsers always send ``Origin``
    on a cross-origin POST, so an ``Origin`` of this host proves the page was ours."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin == f"{request.scheme}://{request.get_host()}"


@csrf_exempt
@xframe_options_exempt
@require_POST
def visitor_profile(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _public_tenant(slug)
    if not _same_origin(request):
        return HttpResponseForbidden("Cross-origin request refused.")
    visitor_id = _visitor_id(request)
    conversation = selectors.visitor_conversation_latest(tenant, visitor_id) if visitor_id else None
    if conversation is None:
        return redirect("visitor-chat", slug=tenant.slug)
    form = VisitorProfileForm(request.POST)
    if not form.is_valid():
        return _visitor_page(request, tenant, conversation, form, status=400)
    with transaction.atomic():
        contact = crm_services.contact_upsert(tenant, name=form.cleaned_data["name"], email=form.cleaned_data["email"])
        Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(contact=contact)
    return redirect(reverse("visitor-chat", kwargs={"slug": tenant.slug}) + "?saved=1")
