"""The operators' back office: the live conversations list and the conversation page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Inbox, Message
from morvo.models import Membership, Tenant
from tests.factories import ContactFactory, UserFactory

LIST = "/admin/conversations/conversation/"


def page(conversation: Conversation) -> str:
    return f"{LIST}{conversation.pk}/change/"


def act(conversation: Conversation, action: str) -> str:
    return f"{LIST}{conversation.pk}/act/{action}/"


def make_conversation(tenant: Tenant, title: str, **fields: Any) -> Conversation:
    inbox = fields.pop("inbox", None) or services.inbox_get_or_create(tenant, Inbox.ChannelType.WEB)
    return Conversation.objects.all_tenants().create(
        tenant=tenant, inbox=inbox, kind=Conversation.Kind.CUSTOMER, title=title, **fields
    )


def write_in(*conversations: Conversation) -> None:
    """A customer message in each (written directly: nothing else changes). The live list
    shows a customer conversation only once someone wrote in it."""
    for conversation in conversations:
        Message.objects.all_tenants().create(
            tenant_id=conversation.tenant_id, conversation=conversation, role=Message.Role.USER, content="hello"
        )


def client_for(tenant: Tenant, role: str) -> tuple[Any, Client]:
    user = UserFactory()
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = Client()
    client.force_login(user)
    return user, client


def snapshot(conversation: Conversation) -> tuple[Any, ...]:
    fresh = Conversation.objects.all_tenants().get(pk=conversation.pk)
    return (
        fresh.status,
        fresh.priority,
        fresh.handled_by,
        fresh.assignee_id,
        list(fresh.labels),
        fresh.snoozed_until,
        Message.objects.all_tenants().filter(conversation=fresh).count(),
    )


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture(autouse=True)
def english_messages(settings: Any) -> None:
    """These tests check behaviour and read the admin's messages in English (the Arabic
    wording is the catalog's business)."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def queue(two_tenants: Any) -> dict[str, Conversation]:
    tenant = two_tenants.a.tenant
    now = timezone.now()
    return {
        "low_new": make_conversation(tenant, "low new", priority="low", last_activity_at=now),
        "urgent_old": make_conversation(
            tenant, "urgent old", priority="urgent", last_activity_at=now - timedelta(hours=3)
        ),
        "high": make_conversation(tenant, "high one", priority="high", last_activity_at=now - timedelta(hours=2)),
        "urgent_new": make_conversation(
            tenant, "urgent new", priority="urgent", last_activity_at=now - timedelta(minutes=5)
        ),
        "medium_resolved": make_conversation(
            tenant, "medium done", priority="medium", status="resolved", last_activity_at=now - timedelta(hours=1)
        ),
        "other": make_conversation(two_tenants.b.tenant, "beta secret", priority="urgent", last_activity_at=now),
    }


# --- the list ---------------------------------------------------------------------------------


def test_list_shows_only_the_tenants_conversations_urgent_first(two_tenants: Any, queue: dict[str, Any]) -> None:
    write_in(*queue.values())
    response = two_tenants.a.web.get(LIST)
    assert response.status_code == 200
    titles = [conversation.title for conversation in response.context["cl"].result_list]
    assert titles == ["urgent new", "urgent old", "high one", "medium done", "low new"]
    body = response.content.decode()
    assert "beta secret" not in body
    assert "/ws/inbox/" in body


def test_list_counts_per_status_and_per_unresolved_priority(two_tenants: Any, queue: dict[str, Any]) -> None:
    write_in(*queue.values())
    response = two_tenants.a.web.get(LIST)
    status_counts = {value: total for value, _label, total in response.context["status_counts"]}
    priority_counts = [(value, total) for value, _label, total in response.context["priority_counts"]]
    assert status_counts == {"open": 4, "pending": 0, "snoozed": 0, "resolved": 1}
    # Resolved conversations are out of the queue; the other tenant's urgent one is not counted.
    assert priority_counts == [("urgent", 2), ("high", 1), ("medium", 0), ("low", 1)]


def test_companion_chats_are_not_in_the_operators_list(two_tenants: Any, queue: dict[str, Any]) -> None:
    companion = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner, "my plans")
    response = two_tenants.a.web.get(LIST)
    assert "my plans" not in [conversation.title for conversation in response.context["cl"].result_list]
    assert two_tenants.a.web.get(page(companion)).status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=resolved", {"medium done"}),
        ("priority__exact=urgent", {"urgent new", "urgent old"}),
        ("handled_by__exact=human", {"high one"}),
        ("assignee=none", {"urgent new", "urgent old", "medium done", "low new"}),
    ],
)
def test_filters(two_tenants: Any, queue: dict[str, Any], query: str, expected: set[str]) -> None:
    write_in(*queue.values())
    Conversation.objects.all_tenants().filter(pk=queue["high"].pk).update(
        handled_by="human", assignee=two_tenants.a.owner
    )
    response = two_tenants.a.web.get(f"{LIST}?{query}")
    assert {conversation.title for conversation in response.context["cl"].result_list} == expected


def test_assignee_filter_offers_only_members_of_the_tenant(two_tenants: Any, queue: dict[str, Any]) -> None:
    write_in(*queue.values())
    agent, _ = client_for(two_tenants.a.tenant, Membership.Role.AGENT)
    Conversation.objects.all_tenants().filter(pk=queue["high"].pk).update(assignee=agent)
    response = two_tenants.a.web.get(f"{LIST}?assignee={agent.pk}")
    assert [conversation.title for conversation in response.context["cl"].result_list] == ["high one"]
    assignee_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == "assignee"
    )
    offered = {value for value, _label in assignee_filter.lookup_choices}
    assert offered == {"none", str(two_tenants.a.owner.pk), str(agent.pk)}
    # Another tenant's member is neither offered nor matched.
    foreign = two_tenants.b.owner
    Conversation.objects.all_tenants().filter(pk=queue["low_new"].pk).update(assignee=foreign)
    response = two_tenants.a.web.get(f"{LIST}?assignee={foreign.pk}")
    assert list(response.context["cl"].result_list) == []


def test_inbox_filter_offers_only_the_tenants_inboxes(two_tenants: Any, queue: dict[str, Any]) -> None:
    write_in(*queue.values())
    whatsapp = Inbox.objects.all_tenants().create(tenant=two_tenants.a.tenant, name="WA", channel_type="whatsapp")
    write_in(make_conversation(two_tenants.a.tenant, "from whatsapp", inbox=whatsapp))
    response = two_tenants.a.web.get(f"{LIST}?inbox={whatsapp.pk}")
    assert [conversation.title for conversation in response.context["cl"].result_list] == ["from whatsapp"]
    inbox_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == "inbox"
    )
    beta_inbox = queue["other"].inbox_id
    assert str(beta_inbox) not in {value for value, _label in inbox_filter.lookup_choices}
    response = two_tenants.a.web.get(f"{LIST}?inbox={beta_inbox}")
    assert list(response.context["cl"].result_list) == []


def test_search_on_title_labels_and_contact(two_tenants: Any, queue: dict[str, Any]) -> None:
    write_in(*queue.values())
    contact = ContactFactory(tenant=two_tenants.a.tenant, name="نورة العتيبي")
    Conversation.objects.all_tenants().filter(pk=queue["high"].pk).update(contact=contact, labels=["vip"])

    def found(term: str) -> set[str]:
        response = two_tenants.a.web.get(LIST, {"q": term})
        return {conversation.title for conversation in response.context["cl"].result_list}

    assert found("urgent") == {"urgent new", "urgent old"}
    assert found("VIP") == {"high one"}
    assert found("نورة") == {"high one"}
    assert found("beta") == set()


# --- the conversation page ------------------------------------------------------------------


def test_page_shows_the_thread_escaped_with_notes_marked_private(two_tenants: Any, queue: dict[str, Any]) -> None:
    tenant, conversation = two_tenants.a.tenant, queue["high"]
    services.message_post(tenant, conversation, content="<script>alert(1)</script> مرحبا")
    services.note_add(tenant, conversation, two_tenants.a.owner, "VIP customer, be kind")
    response = two_tenants.a.web.get(page(conversation))
    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; مرحبا" in body
    assert "<script>alert(1)" not in body
    assert 'class="operator-message operator-message--note"' in body
    assert "VIP customer, be kind" in body
    assert f'data-socket="/ws/chat/{conversation.pk}/"' in body
    assert "/act/take-over/" in body


def test_viewer_reads_but_cannot_act(two_tenants: Any, queue: dict[str, Any]) -> None:
    _, viewer = client_for(two_tenants.a.tenant, Membership.Role.VIEWER)
    conversation = queue["high"]
    assert viewer.get(LIST).status_code == 200
    response = viewer.get(page(conversation))
    assert response.status_code == 200
    assert "/act/" not in response.content.decode()
    before = snapshot(conversation)
    posts = {
        "take-over": {},
        "reply": {"content": "hi"},
        "note": {"content": "n"},
        "assign": {"assignee": two_tenants.a.owner.pk},
        "label": {"labels": "x"},
        "resolve": {},
        "priority": {"priority": "urgent"},
    }
    for action, data in posts.items():
        assert viewer.post(act(conversation, action), data).status_code == 403, action
    assert snapshot(conversation) == before


def test_another_tenants_conversation_is_404_and_unchanged(two_tenants: Any, queue: dict[str, Any]) -> None:
    other = queue["other"]
    assert two_tenants.a.web.get(page(other)).status_code == 404
    assert two_tenants.a.web.get(f"{LIST}999999/change/").status_code == 404
    before = snapshot(other)
    for action, data in {"take-over": {}, "reply": {"content": "hi"}, "resolve": {}, "note": {"content": "x"}}.items():
        assert two_tenants.a.web.post(act(other, action), data).status_code == 404, action
    assert snapshot(other) == before


def test_anonymous_is_sent_to_sign_in_and_nothing_changes(two_tenants: Any, queue: dict[str, Any]) -> None:
    anonymous = Client()
    conversation = queue["high"]
    for url in (LIST, page(conversation)):
        response = anonymous.get(url)
        assert response.status_code == 302
        assert "login" in response["Location"]
    before = snapshot(conversation)
    response = anonymous.post(act(conversation, "resolve"))
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert snapshot(conversation) == before


def test_actions_need_post(two_tenants: Any, queue: dict[str, Any]) -> None:
    before = snapshot(queue["high"])
    assert two_tenants.a.web.get(act(queue["high"], "resolve")).status_code == 405
    assert two_tenants.a.web.post(act(queue["high"], "explode")).status_code == 404
    assert snapshot(queue["high"]) == before


# --- each action ----------------------------------------------------------------------------


def test_take_over_hands_the_conversation_to_a_person_and_tells_the_customer(
    two_tenants: Any, queue: dict[str, Any]
) -> None:
    agent, client = client_for(two_tenants.a.tenant, Membership.Role.AGENT)
    conversation = queue["high"]
    response = client.post(act(conversation, "take-over"), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == page(conversation)
    conversation.refresh_from_db()
    assert conversation.handled_by == "human"
    assert conversation.assignee_id == agent.pk
    notices = list(Message.objects.for_tenant(two_tenants.a.tenant).filter(conversation=conversation))
    assert [(message.role, message.content) for message in notices] == [("system", services.TAKEOVER_NOTICE["ar"])]
    assert "/act/hand-back/" in response.content.decode()

    client.post(act(conversation, "hand-back"))
    conversation.refresh_from_db()
    assert conversation.handled_by == "ai"
    assert Message.objects.for_tenant(two_tenants.a.tenant).filter(conversation=conversation).count() == 2


def test_reply_is_an_agent_message_and_note_is_private(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    two_tenants.a.web.post(act(conversation, "reply"), {"content": "  أهلًا، كيف أخدمك؟ "})
    two_tenants.a.web.post(act(conversation, "note"), {"content": "call her back"})
    thread = Message.objects.for_tenant(two_tenants.a.tenant).filter(conversation=conversation).order_by("id")
    assert [(message.role, message.content, message.author_id) for message in thread] == [
        ("agent", "أهلًا، كيف أخدمك؟", two_tenants.a.owner.pk),
        ("note", "call her back", two_tenants.a.owner.pk),
    ]


def test_empty_reply_is_an_error_message_and_writes_nothing(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    before = snapshot(conversation)
    response = two_tenants.a.web.post(act(conversation, "reply"), {"content": "   "}, follow=True)
    assert messages_of(response) == ["The message is empty."]
    assert snapshot(conversation) == before


def test_assign_to_a_member_and_not_to_a_stranger(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    agent, _ = client_for(two_tenants.a.tenant, Membership.Role.AGENT)
    response = two_tenants.a.web.post(act(conversation, "assign"), {"assignee": agent.pk}, follow=True)
    assert messages_of(response) == [f"Assigned to {agent.email}."]
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent.pk

    before = snapshot(conversation)
    for stranger in (two_tenants.b.owner.pk, 999999, "abc"):
        response = two_tenants.a.web.post(act(conversation, "assign"), {"assignee": stranger}, follow=True)
        assert messages_of(response) == ["The assignee is not a member of this business."]
    assert snapshot(conversation) == before

    two_tenants.a.web.post(act(conversation, "assign"), {"assignee": ""})
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


def test_labels_are_comma_separated(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    two_tenants.a.web.post(act(conversation, "label"), {"labels": "VIP, refund ،شكوى, vip,"})
    conversation.refresh_from_db()
    assert conversation.labels == ["vip", "refund", "شكوى"]


def test_snooze_needs_a_future_time(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    before = snapshot(conversation)
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for value in ("", past, "next tuesday"):
        response = two_tenants.a.web.post(act(conversation, "snooze"), {"snoozed_until": value}, follow=True)
        assert len(messages_of(response)) == 1
        assert response.context["messages"]._loaded_messages[0].level_tag == "error"
    assert snapshot(conversation) == before

    future = timezone.localtime() + timedelta(days=1)
    two_tenants.a.web.post(act(conversation, "snooze"), {"snoozed_until": future.strftime("%Y-%m-%dT%H:%M")})
    conversation.refresh_from_db()
    assert conversation.status == "snoozed"
    assert conversation.snoozed_until == future.replace(second=0, microsecond=0)


def test_resolve_and_reopen(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    response = two_tenants.a.web.post(act(conversation, "resolve"), follow=True)
    assert messages_of(response) == ["Resolved."]
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    two_tenants.a.web.post(act(conversation, "reopen"))
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_change_priority_and_refuse_an_unknown_one(two_tenants: Any, queue: dict[str, Any]) -> None:
    conversation = queue["high"]
    response = two_tenants.a.web.post(act(conversation, "priority"), {"priority": "urgent"}, follow=True)
    assert messages_of(response) == ["Priority changed."]
    conversation.refresh_from_db()
    assert conversation.priority == "urgent"
    before = snapshot(conversation)
    response = two_tenants.a.web.post(act(conversation, "priority"), {"priority": "apocalyptic"}, follow=True)
    assert len(messages_of(response)) == 1
    assert snapshot(conversation) == before


# --- inboxes --------------------------------------------------------------------------------


def test_inbox_list_is_the_tenants_and_never_shows_the_secret(two_tenants: Any) -> None:
    mine = services.inbox_get_or_create(two_tenants.a.tenant, Inbox.ChannelType.WEB)
    theirs = Inbox.objects.all_tenants().create(tenant=two_tenants.b.tenant, name="Beta WA", channel_type="whatsapp")
    body = two_tenants.a.web.get("/admin/conversations/inbox/").content.decode()
    assert mine.name in body
    assert "Beta WA" not in body
    assert mine.secret not in body
    assert f"{mine.secret[:4]}…" in body
    change = two_tenants.a.web.get(f"/admin/conversations/inbox/{mine.pk}/change/")
    assert change.status_code == 200
    assert mine.secret not in change.content.decode()
    assert two_tenants.a.web.get(f"/admin/conversations/inbox/{theirs.pk}/change/").status_code == 404
