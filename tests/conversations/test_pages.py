"""The chat pages: the staff companion (/app/chat/) and the public customer chat (/c/<slug>/)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from conversations import services
from conversations.models import Conversation, Message
from conversations.visitors import COOKIE_NAME, COOKIE_SALT, visitor_id_from_cookie
from crm.models import Contact
from morvo.models import Tenant
from tests.factories import ContactFactory, TenantFactory, UserFactory

SAME_ORIGIN = {"HTTP_ORIGIN": "http://testserver"}


def companion_count(tenant: Tenant) -> int:
    return Conversation.objects.for_tenant(tenant).filter(kind=Conversation.Kind.COMPANION).count()


def html_root(response: Any) -> str:
    match = re.search(r"<html[^>]*>", response.content.decode())
    assert match is not None
    return match.group(0)


def post_message(conversation: Conversation, content: str, role: str = Message.Role.USER, **extra: Any) -> Message:
    return Message.objects.for_tenant(conversation.tenant).create(
        tenant=conversation.tenant, conversation=conversation, role=role, content=content, **extra
    )


# --------------------------------------------------------------------------- companion


def test_companion_list_shows_only_the_users_own_conversations(two_tenants: Any) -> None:
    world = two_tenants.a
    mine = services.conversation_start_companion(world.tenant, world.owner, title="خطة رمضان")
    colleague, _, _ = world.member("admin")
    theirs = services.conversation_start_companion(world.tenant, colleague, title="Colleague secret plan")
    other_tenant = services.conversation_start_companion(two_tenants.b.tenant, two_tenants.b.owner, title="Beta plan")
    customer = services.conversation_start_visitor(world.tenant, "v" * 32, title="Customer chat")

    response = world.web.get("/app/chat/")

    assert response.status_code == 200
    listed = re.findall(r'data-conversation-id="(\d+)"', response.content.decode())
    assert listed == [str(mine.pk)]
    body = response.content.decode()
    assert "خطة رمضان" in body
    for hidden in (theirs, other_tenant, customer):
        assert hidden.title not in body


def test_companion_list_sends_anonymous_users_to_login(client: Client, db: Any) -> None:
    response = client.get("/app/chat/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/chat/"


def test_companion_page_sends_anonymous_users_to_login(client: Client, tenant_world: Any) -> None:
    conversation = services.conversation_start_companion(tenant_world.tenant, tenant_world.owner)
    response = client.get(f"/app/chat/{conversation.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/app/chat/{conversation.pk}/"


def test_new_conversation_needs_a_signed_in_user(client: Client, tenant_world: Any) -> None:
    response = client.post("/app/chat/new/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert companion_count(tenant_world.tenant) == 0


def test_a_user_without_a_business_gets_a_clear_page(db: Any) -> None:
    client = Client()
    client.force_login(UserFactory())
    response = client.get("/app/chat/")
    assert response.status_code == 403
    assert 'data-testid="no-tenant"' in response.content.decode()
    assert client.post("/app/chat/new/").status_code == 403
    assert Conversation.objects.all_tenants().count() == 0


def test_new_conversation_post_creates_exactly_one_and_redirects_to_it(tenant_world: Any) -> None:
    response = tenant_world.web.post("/app/chat/new/")
    conversations = list(Conversation.objects.for_tenant(tenant_world.tenant))
    assert len(conversations) == 1
    conversation = conversations[0]
    assert conversation.kind == Conversation.Kind.COMPANION
    assert conversation.staff_user_id == tenant_world.owner.pk
    assert response.status_code == 302
    assert response["Location"] == f"/app/chat/{conversation.pk}/"


def test_new_conversation_refuses_get(tenant_world: Any) -> None:
    assert tenant_world.web.get("/app/chat/new/").status_code == 405
    assert companion_count(tenant_world.tenant) == 0


def test_companion_page_shows_the_history_and_the_client(tenant_world: Any) -> None:
    conversation = services.conversation_start_companion(tenant_world.tenant, tenant_world.owner)
    question = post_message(conversation, "كيف كانت المبيعات؟")
    reply = post_message(
        conversation,
        "كانت جيدة.",
        role=Message.Role.ASSISTANT,
        reply_to=question,
        metadata={
            "kpis": [{"label": "الإيراد", "value": "12,500", "unit": "SAR"}],
            "suggestions": ["اقترح حملة"],
            "attachments": [{"type": "content", "title": "منشور", "text": "نص المنشور"}],
            "sources": [
                {"title": "Report", "url": "https://example.com/report"},
                {"title": "Evil", "url": "javascript:alert(1)"},
                {"title": "سياسة الاسترجاع", "document_id": 7},
            ],
        },
    )

    response = tenant_world.web.get(f"/app/chat/{conversation.pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-message-id="{question.pk}"' in body
    assert f'data-message-id="{reply.pk}"' in body
    assert "الإيراد" in body
    assert "12,500" in body
    assert 'data-suggestion dir="auto">اقترح حملة</button>' in body
    assert "نص المنشور" in body
    assert 'href="https://example.com/report"' in body
    assert "javascript:alert(1)" not in body
    assert '<span dir="auto">سياسة الاسترجاع</span>' in body  # a document is cited by its title
    assert 'id="chat-config"' in body
    assert 'id="chat-strings"' in body
    assert "conversations/chat.js" in body
    assert f'"lastMessageId": {reply.pk}' in body
    assert f'"socketPath": "/ws/chat/{conversation.pk}/"' in body


def test_companion_page_renders_at_most_the_last_hundred_messages(tenant_world: Any) -> None:
    conversation = services.conversation_start_companion(tenant_world.tenant, tenant_world.owner)
    messages = [post_message(conversation, f"رسالة {number}") for number in range(105)]
    body = tenant_world.web.get(f"/app/chat/{conversation.pk}/").content.decode()
    shown = [int(value) for value in re.findall(r'<li class="message[^"]*" data-message-id="(\d+)"', body)]
    assert shown == [message.pk for message in messages[5:]]


def test_another_users_companion_conversation_is_404(tenant_world: Any) -> None:
    colleague, _, _ = tenant_world.member("admin")
    theirs = services.conversation_start_companion(tenant_world.tenant, colleague)
    post_message(theirs, "سر")
    response = tenant_world.web.get(f"/app/chat/{theirs.pk}/")
    assert response.status_code == 404
    assert "سر" not in response.content.decode()


def test_another_tenants_companion_conversation_is_404(two_tenants: Any) -> None:
    theirs = services.conversation_start_companion(two_tenants.b.tenant, two_tenants.b.owner)
    assert two_tenants.b.web.get(f"/app/chat/{theirs.pk}/").status_code == 200
    assert two_tenants.a.web.get(f"/app/chat/{theirs.pk}/").status_code == 404
    assert two_tenants.a.web.get("/app/chat/999999/").status_code == 404


def test_a_customer_conversation_is_not_a_companion_page(tenant_world: Any) -> None:
    customer = services.conversation_start_visitor(tenant_world.tenant, "a" * 32)
    assert tenant_world.web.get(f"/app/chat/{customer.pk}/").status_code == 404


def test_html_in_stored_messages_is_escaped(tenant_world: Any) -> None:
    conversation = services.conversation_start_companion(tenant_world.tenant, tenant_world.owner)
    post_message(conversation, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    post_message(
        conversation,
        "ok",
        role=Message.Role.ASSISTANT,
        metadata={"kpis": [{"label": "<b>bold</b>", "value": "<i>1</i>", "unit": ""}], "suggestions": ["<u>x</u>"]},
    )
    body = tenant_world.web.get(f"/app/chat/{conversation.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in body
    assert "<img src=x" not in body
    assert "<script>alert(1)" not in body
    assert "<b>bold</b>" not in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "<u>x</u>" not in body


def test_companion_pages_are_rtl_in_arabic_and_ltr_in_english(tenant_world: Any) -> None:
    conversation = services.conversation_start_companion(tenant_world.tenant, tenant_world.owner)
    for path in ("/app/chat/", f"/app/chat/{conversation.pk}/"):
        arabic = tenant_world.web.get(path, HTTP_ACCEPT_LANGUAGE="ar")
        english = tenant_world.web.get(path, HTTP_ACCEPT_LANGUAGE="en")
        assert html_root(arabic) == '<html lang="ar" dir="rtl">'
        assert html_root(english) == '<html lang="en" dir="ltr">'
    arabic_body = tenant_world.web.get(f"/app/chat/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert "محادثة جديدة" in arabic_body
    assert "إرسال" in arabic_body
    english_body = tenant_world.web.get(f"/app/chat/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "New conversation" in english_body


def test_companion_pages_keep_x_frame_options(tenant_world: Any) -> None:
    assert tenant_world.web.get("/app/chat/")["X-Frame-Options"] == "DENY"


# --------------------------------------------------------------------------- public chat


def visitor_conversations(tenant: Tenant) -> list[Conversation]:
    return list(Conversation.objects.for_tenant(tenant).filter(kind=Conversation.Kind.CUSTOMER))


def test_public_chat_sets_a_signed_cookie_and_starts_one_conversation(client: Client, tenant_world: Any) -> None:
    response = client.get(f"/c/{tenant_world.tenant.slug}/")

    assert response.status_code == 200
    cookie = response.cookies[COOKIE_NAME]
    visitor_id = visitor_id_from_cookie(cookie.value)
    assert visitor_id is not None
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 365 * 24 * 3600
    conversations = visitor_conversations(tenant_world.tenant)
    assert len(conversations) == 1
    assert conversations[0].visitor_id == visitor_id
    assert conversations[0].inbox.channel_type == "web"
    body = response.content.decode()
    assert f'"socketPath": "/ws/chat/{conversations[0].pk}/"' in body
    assert tenant_world.tenant.name in body


def test_a_second_visit_reuses_the_conversation(client: Client, tenant_world: Any) -> None:
    first = client.get(f"/c/{tenant_world.tenant.slug}/")
    second = client.get(f"/c/{tenant_world.tenant.slug}/")
    assert second.status_code == 200
    assert visitor_id_from_cookie(second.cookies[COOKIE_NAME].value) == visitor_id_from_cookie(
        first.cookies[COOKIE_NAME].value
    )
    assert len(visitor_conversations(tenant_world.tenant)) == 1


def test_a_resolved_conversation_is_followed_by_a_new_one(client: Client, tenant_world: Any) -> None:
    client.get(f"/c/{tenant_world.tenant.slug}/")
    Conversation.objects.for_tenant(tenant_world.tenant).update(status=Conversation.Status.RESOLVED)
    client.get(f"/c/{tenant_world.tenant.slug}/")
    conversations = visitor_conversations(tenant_world.tenant)
    assert len(conversations) == 2
    assert {conversation.visitor_id for conversation in conversations} == {conversations[0].visitor_id}


def test_a_forged_cookie_gets_a_new_visitor(client: Client, tenant_world: Any) -> None:
    other = services.conversation_start_visitor(tenant_world.tenant, "b" * 32)
    post_message(other, "رسالة زائر آخر")
    client.cookies[COOKIE_NAME] = "b" * 32  # unsigned: not ours
    response = client.get(f"/c/{tenant_world.tenant.slug}/")
    assert "رسالة زائر آخر" not in response.content.decode()
    assert visitor_id_from_cookie(response.cookies[COOKIE_NAME].value) != "b" * 32
    assert len(visitor_conversations(tenant_world.tenant)) == 2


def test_public_chat_shows_only_public_messages(client: Client, tenant_world: Any) -> None:
    client.get(f"/c/{tenant_world.tenant.slug}/")
    conversation = visitor_conversations(tenant_world.tenant)[0]
    post_message(conversation, "مرحبا")
    post_message(conversation, "ملاحظة داخلية سرية", role=Message.Role.NOTE)
    post_message(conversation, "انضم إليك أحد أعضاء فريقنا", role=Message.Role.SYSTEM)
    body = client.get(f"/c/{tenant_world.tenant.slug}/").content.decode()
    assert "مرحبا" in body
    assert "ملاحظة داخلية سرية" not in body
    assert '<p class="message__notice" dir="auto">انضم إليك أحد أعضاء فريقنا</p>' in body


def test_public_chat_of_an_unknown_or_inactive_tenant_is_404(client: Client, db: Any) -> None:
    TenantFactory(slug="closed", is_active=False)
    assert client.get("/c/no-such-shop/").status_code == 404
    assert client.get("/c/closed/").status_code == 404
    assert COOKIE_NAME not in client.cookies
    assert Conversation.objects.all_tenants().count() == 0


def test_public_chat_shows_the_tenant_colour(client: Client, db: Any) -> None:
    TenantFactory(slug="oud", name="دار العود", primary_color="#7a4b1f")
    body = client.get("/c/oud/").content.decode()
    assert "--chat-brand: #7a4b1f;" in body
    assert "دار العود" in body


def test_a_bad_stored_colour_falls_back_to_the_default(client: Client, db: Any) -> None:
    TenantFactory(slug="odd", primary_color="red;}<")
    body = client.get("/c/odd/").content.decode()
    assert "--chat-brand: #0f766e;" in body
    assert "red;}" not in body


def test_public_chat_can_be_framed(client: Client, tenant_world: Any) -> None:
    response = client.get(f"/c/{tenant_world.tenant.slug}/")
    assert "X-Frame-Options" not in response
    profile = client.post(f"/c/{tenant_world.tenant.slug}/profile/", {"name": "x", "email": "bad"}, **SAME_ORIGIN)
    assert "X-Frame-Options" not in profile


def test_public_chat_is_rtl_in_arabic_and_ltr_in_english(client: Client, tenant_world: Any) -> None:
    arabic = client.get(f"/c/{tenant_world.tenant.slug}/", HTTP_ACCEPT_LANGUAGE="ar")
    english = client.get(f"/c/{tenant_world.tenant.slug}/", HTTP_ACCEPT_LANGUAGE="en")
    assert html_root(arabic) == '<html lang="ar" dir="rtl">'
    assert html_root(english) == '<html lang="en" dir="ltr">'
    assert "اكتب رسالتك" in arabic.content.decode()
    assert "Write your message" in english.content.decode()


def test_public_chat_history_escapes_html(client: Client, tenant_world: Any) -> None:
    client.get(f"/c/{tenant_world.tenant.slug}/")
    conversation = visitor_conversations(tenant_world.tenant)[0]
    post_message(conversation, "<img src=x onerror=alert(1)>مرحبا")
    body = client.get(f"/c/{tenant_world.tenant.slug}/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;مرحبا" in body
    assert "<img src=x" not in body


def test_secure_requests_get_a_samesite_none_cookie(tenant_world: Any) -> None:
    response = Client().get(f"/c/{tenant_world.tenant.slug}/", secure=True)
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["samesite"] == "None"
    assert cookie["secure"] is True


# --------------------------------------------------------------------------- visitor profile


@pytest.fixture
def visitor(client: Client, tenant_world: Any) -> tuple[Client, Conversation]:
    client.get(f"/c/{tenant_world.tenant.slug}/")
    return client, visitor_conversations(tenant_world.tenant)[0]


def test_profile_with_a_bad_email_shows_the_error_and_writes_nothing(visitor: Any, tenant_world: Any) -> None:
    client, conversation = visitor
    response = client.post(
        f"/c/{tenant_world.tenant.slug}/profile/", {"name": "نورة", "email": "not-an-email"}, **SAME_ORIGIN
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "field--invalid" in body
    assert 'value="not-an-email"' in body
    assert Contact.objects.for_tenant(tenant_world.tenant).count() == 0
    conversation.refresh_from_db()
    assert conversation.contact_id is None


def test_an_empty_profile_is_refused(visitor: Any, tenant_world: Any) -> None:
    client, _ = visitor
    response = client.post(f"/c/{tenant_world.tenant.slug}/profile/", {"name": " ", "email": ""}, **SAME_ORIGIN)
    assert response.status_code == 400
    assert "errorlist nonfield" in response.content.decode()
    assert Contact.objects.for_tenant(tenant_world.tenant).count() == 0


def test_profile_creates_and_links_a_contact_of_the_tenant(visitor: Any, two_tenants: Any, tenant_world: Any) -> None:
    client, conversation = visitor
    response = client.post(
        f"/c/{tenant_world.tenant.slug}/profile/", {"name": "نورة", "email": "Noura@Example.com"}, **SAME_ORIGIN
    )
    assert response.status_code == 302
    assert response["Location"] == f"/c/{tenant_world.tenant.slug}/?saved=1"
    contacts = list(Contact.objects.for_tenant(tenant_world.tenant))
    assert [(contact.name, contact.email) for contact in contacts] == [("نورة", "Noura@Example.com")]
    conversation.refresh_from_db()
    assert conversation.contact_id == contacts[0].pk
    for other in (two_tenants.a.tenant, two_tenants.b.tenant):
        assert Contact.objects.for_tenant(other).count() == 0
    page = client.get(response["Location"]).content.decode()
    assert "نورة" in page
    assert "profile__saved" in page


def test_profile_links_the_existing_contact_with_that_email(visitor: Any, tenant_world: Any) -> None:
    client, conversation = visitor
    existing = ContactFactory(tenant=tenant_world.tenant, name="", email="noura@example.com")
    other_tenant_contact = ContactFactory(email="noura@example.com")
    client.post(
        f"/c/{tenant_world.tenant.slug}/profile/", {"name": "نورة", "email": "NOURA@example.com"}, **SAME_ORIGIN
    )
    conversation.refresh_from_db()
    assert conversation.contact_id == existing.pk
    assert Contact.objects.for_tenant(tenant_world.tenant).count() == 1
    existing.refresh_from_db()
    assert existing.name == "نورة"
    other_tenant_contact.refresh_from_db()
    assert other_tenant_contact.name != "نورة"


def test_profile_from_a_foreign_origin_is_refused(visitor: Any, tenant_world: Any) -> None:
    client, _ = visitor
    response = client.post(
        f"/c/{tenant_world.tenant.slug}/profile/",
        {"name": "x", "email": "x@example.com"},
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert Contact.objects.for_tenant(tenant_world.tenant).count() == 0


def test_profile_without_a_visitor_cookie_writes_nothing(client: Client, tenant_world: Any) -> None:
    response = client.post(
        f"/c/{tenant_world.tenant.slug}/profile/", {"name": "x", "email": "x@example.com"}, **SAME_ORIGIN
    )
    assert response.status_code == 302
    assert response["Location"] == f"/c/{tenant_world.tenant.slug}/"
    assert Contact.objects.for_tenant(tenant_world.tenant).count() == 0


def test_profile_of_another_tenant_does_not_reach_the_visitors_conversation(
    visitor: Any, two_tenants: Any, tenant_world: Any
) -> None:
    client, conversation = visitor
    response = client.post(
        f"/c/{two_tenants.b.tenant.slug}/profile/", {"name": "x", "email": "x@example.com"}, **SAME_ORIGIN
    )
    assert response.status_code == 302
    assert Contact.objects.for_tenant(two_tenants.b.tenant).count() == 0
    conversation.refresh_from_db()
    assert conversation.contact_id is None


def test_signed_cookie_matches_the_websocket_check(client: Client, tenant_world: Any) -> None:
    """The page and the consumer read the same cookie the same way."""
    response = client.get(f"/c/{tenant_world.tenant.slug}/")
    value = response.cookies[COOKIE_NAME].value
    assert signing.get_cookie_signer(salt=COOKIE_NAME + COOKIE_SALT).unsign(value) == visitor_id_from_cookie(value)
