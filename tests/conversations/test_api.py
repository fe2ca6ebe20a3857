"""The conversations REST API: /api/v1/conversations, its messages, take-over, hand-back, notes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Inbox, Message
from morvo.celery import app as celery_app

RIYADH = ZoneInfo("Asia/Riyadh")
NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
NOT_AUTHENTICATED = {
    "error": {"status": 401, "code": "not_authenticated", "message": "Authentication credentials were not provided."}
}
ROLE_CANNOT_CHANGE = {
    "error": {"status": 403, "code": "permission_denied", "message": "Your role in this tenant cannot change this."}
}


@pytest.fixture(autouse=True)
def english_messages(settings):
    """Messages are asserted in English (the project's default language is Arabic)."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def turns_run_at_once() -> Any:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def iso(moment: datetime | None) -> str | None:
    return timezone.localtime(moment).isoformat() if moment is not None else None


def invalid(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"error": {"status": 400, "code": "invalid", "message": "Invalid input.", "fields": fields}}


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.all_tenants().get(pk=conversation.pk)


def conversation_body(conversation: Conversation) -> dict[str, Any]:
    conversation = fresh(conversation)
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "inbox": conversation.inbox_id,
        "contact": conversation.contact_id,
        "staff_user": conversation.staff_user_id,
        "title": conversation.title,
        "status": conversation.status,
        "priority": conversation.priority,
        "handled_by": conversation.handled_by,
        "assignee": conversation.assignee_id,
        "labels": conversation.labels,
        "language": conversation.language,
        "snoozed_until": iso(conversation.snoozed_until),
        "unread_for_agents": conversation.unread_for_agents,
        "unread_for_user": conversation.unread_for_user,
        "last_activity_at": iso(conversation.last_activity_at),
        "created_at": iso(conversation.created_at),
    }


def message_body(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "content_type": "text",
        "metadata": message.metadata,
        "client_message_id": message.client_message_id,
        "reply_to": message.reply_to_id,
        "author": message.author.email if message.author_id else None,
        "delivery_status": message.delivery_status,
        "created_at": iso(message.created_at),
    }


def messages_of(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        Message.objects.all_tenants().filter(conversation=conversation).order_by("id").values_list("role", "content")
    )


def state(conversation: Conversation) -> tuple[Any, ...]:
    """Everything a write could change, read fresh."""
    row = fresh(conversation)
    return (
        row.status,
        row.priority,
        row.handled_by,
        row.assignee_id,
        row.labels,
        row.snoozed_until,
        row.title,
        row.last_activity_at,
        Message.objects.all_tenants().filter(conversation=conversation).count(),
    )


def web_inbox(world: Any) -> Inbox:
    return services.inbox_get_or_create(world.tenant, Inbox.ChannelType.WEB)


def customer(world: Any, title: str = "Order question", **changes: Any) -> Conversation:
    conversation = services.conversation_start_customer(world.tenant, web_inbox(world), title)
    if changes:
        services.conversation_update(world.tenant, conversation.pk, **changes)
    return fresh(conversation)


def written(conversation: Conversation) -> Conversation:
    """A customer message in ``conversation`` (written directly: nothing else changes). The
    list shows a customer conversation only once someone wrote in it."""
    Message.objects.all_tenants().create(
        tenant_id=conversation.tenant_id, conversation=conversation, role=Message.Role.USER, content="hello"
    )
    return fresh(conversation)


def at(conversation: Conversation, moment: datetime) -> Conversation:
    Conversation.objects.all_tenants().filter(pk=conversation.pk).update(last_activity_at=moment)
    return fresh(conversation)


# --- list ---------------------------------------------------------------------------------------


def test_list_is_the_token_tenants_only_with_exact_bodies(two_tenants):
    mine = written(customer(two_tenants.a, labels=["vip"]))
    theirs = written(customer(two_tenants.b))

    response = two_tenants.a.api.get("/api/v1/conversations")

    assert response.status_code == 200
    assert response.json() == {"count": 1, "next": None, "previous": None, "results": [conversation_body(mine)]}
    assert response.json()["results"][0]["labels"] == ["vip"]
    assert ids(two_tenants.b.api.get("/api/v1/conversations/")) == [theirs.pk]


def test_companion_conversations_are_listed_only_to_their_owner(two_tenants):
    world = two_tenants.a
    own = services.conversation_start_companion(world.tenant, world.owner, "my chat")
    admin, _, admin_api = world.member("admin")
    colleagues = services.conversation_start_companion(world.tenant, admin, "admin chat")
    shared = at(written(customer(world)), timezone.now() - timedelta(days=1))

    assert ids(world.api.get("/api/v1/conversations")) == [own.pk, shared.pk]
    assert ids(admin_api.get("/api/v1/conversations")) == [colleagues.pk, shared.pk]
    response = admin_api.get(f"/api/v1/conversations/{own.pk}")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = admin_api.get(f"/api/v1/conversations/{own.pk}/messages")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_list_puts_urgent_and_high_first_then_the_latest_activity(two_tenants):
    world = two_tenants.a
    base = datetime(2026, 3, 1, 12, 0, tzinfo=RIYADH)
    old_low = at(written(customer(world, "old low")), base)
    new_low = at(written(customer(world, "new low")), base + timedelta(hours=5))
    old_urgent = at(written(customer(world, "old urgent", priority="urgent")), base - timedelta(days=3))
    new_high = at(written(customer(world, "new high", priority="high")), base + timedelta(hours=1))
    old_high = at(written(customer(world, "old high", priority="high")), base - timedelta(hours=1))
    medium = at(written(customer(world, "medium", priority="medium")), base - timedelta(days=9))

    assert ids(world.api.get("/api/v1/conversations")) == [
        old_urgent.pk,
        new_high.pk,
        old_high.pk,
        medium.pk,
        new_low.pk,
        old_low.pk,
    ]


def test_list_filters(two_tenants):
    world = two_tenants.a
    agent, _, _ = world.member("agent")
    email = Inbox.objects.for_tenant(world.tenant).create(
        tenant=world.tenant, name="Mail", channel_type=Inbox.ChannelType.EMAIL
    )
    base = datetime(2026, 3, 1, tzinfo=RIYADH)
    vip = at(written(customer(world, "vip", labels=["VIP", "returns"], priority="high")), base)
    pending = at(written(customer(world, "pending", status="pending", assignee=agent)), base - timedelta(hours=1))
    mail = at(written(services.conversation_start_customer(world.tenant, email, "mail")), base - timedelta(hours=2))
    taken = at(customer(world, "taken", labels=["vip"]), base - timedelta(hours=3))
    services.conversation_take_over(world.tenant, taken.pk, world.owner)
    Conversation.objects.all_tenants().filter(pk=taken.pk).update(last_activity_at=base - timedelta(hours=3))
    own = at(services.conversation_start_companion(world.tenant, world.owner), base - timedelta(hours=4))
    written(customer(two_tenants.b, "other vip", labels=["vip"], status="pending"))

    def listed(query: str) -> list[int]:
        return ids(world.api.get(f"/api/v1/conversations?{query}"))

    assert listed("label=vip") == [vip.pk, taken.pk]
    assert listed("label=%20VIP") == [vip.pk, taken.pk]
    assert listed("label=returns") == [vip.pk]
    assert listed("label=none") == []
    assert listed("status=pending") == [pending.pk]
    assert listed("priority=high") == [vip.pk]
    assert listed("kind=companion") == [own.pk]
    assert listed(f"inbox={email.pk}") == [mail.pk]
    assert listed("handled_by=human") == [taken.pk]
    assert listed(f"assignee={agent.pk}") == [pending.pk]
    assert listed(f"assignee={world.owner.pk}") == [taken.pk]
    assert listed("status=open&label=vip") == [vip.pk, taken.pk]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("status=closed", "status", "Select a valid choice. closed is not one of the available choices."),
        ("kind=robot", "kind", "Select a valid choice. robot is not one of the available choices."),
        ("inbox=abc", "inbox", "Select a valid choice. That choice is not one of the available choices."),
    ],
)
def test_bad_filters_are_400(two_tenants, query, field, message):
    customer(two_tenants.a)

    response = two_tenants.a.api.get(f"/api/v1/conversations?{query}")

    assert response.status_code == 400
    assert response.json() == invalid({field: [message]})


def test_another_tenants_inbox_or_member_as_filter_is_400_like_a_missing_one(two_tenants):
    customer(two_tenants.a)
    other_inbox = web_inbox(two_tenants.b)
    refused = "Select a valid choice. That choice is not one of the available choices."

    for query, field in [
        (f"inbox={other_inbox.pk}", "inbox"),
        ("inbox=987654321", "inbox"),
        (f"assignee={two_tenants.b.owner.pk}", "assignee"),
        ("assignee=987654321", "assignee"),
    ]:
        response = two_tenants.a.api.get(f"/api/v1/conversations?{query}")
        assert (response.status_code, response.json()) == (400, invalid({field: [refused]})), query


def test_list_is_paged(two_tenants):
    world = two_tenants.a
    base = datetime(2026, 3, 1, tzinfo=RIYADH)
    made = [at(written(customer(world, f"c{number}")), base - timedelta(minutes=number)) for number in range(3)]

    first = world.api.get("/api/v1/conversations?page_size=2").json()
    second = world.api.get("/api/v1/conversations?page_size=2&page=2").json()

    assert first["count"] == 3
    assert first["next"] == "http://testserver/api/v1/conversations?page=2&page_size=2"
    assert [row["id"] for row in first["results"]] == [made[0].pk, made[1].pk]
    assert [row["id"] for row in second["results"]] == [made[2].pk]
    assert second["next"] is None


# --- create -------------------------------------------------------------------------------------


def test_create_a_customer_conversation_in_the_tenants_inbox(two_tenants):
    world = two_tenants.a
    inbox = web_inbox(world)

    response = world.api.post(
        "/api/v1/conversations", {"kind": "customer", "inbox": inbox.pk, "title": "Refund"}, format="json"
    )

    assert response.status_code == 201
    conversation = Conversation.objects.for_tenant(world.tenant).get()
    assert response.json() == conversation_body(conversation)
    assert (conversation.kind, conversation.inbox_id, conversation.title, conversation.staff_user_id) == (
        "customer",
        inbox.pk,
        "Refund",
        None,
    )
    assert messages_of(conversation) == []


def test_create_a_companion_conversation_belongs_to_the_caller(two_tenants):
    agent, _, agent_api = two_tenants.a.member("agent")

    response = agent_api.post("/api/v1/conversations/", {"kind": "companion"}, format="json")

    assert response.status_code == 201
    conversation = Conversation.objects.for_tenant(two_tenants.a.tenant).get()
    assert (response.json()["id"], response.json()["staff_user"], response.json()["title"]) == (
        conversation.pk,
        agent.pk,
        "",
    )
    assert conversation.inbox.channel_type == "companion"
    assert ids(two_tenants.a.api.get("/api/v1/conversations")) == []  # the owner does not see it


@pytest.mark.django_db(transaction=True)
def test_create_with_a_message_posts_it_and_the_ai_answers(two_tenants, turns_run_at_once):
    world = two_tenants.a

    response = world.api.post(
        "/api/v1/conversations",
        {"kind": "customer", "inbox": web_inbox(world).pk, "message": "  Do you ship to Jeddah?  "},
        format="json",
    )

    assert response.status_code == 201
    conversation = Conversation.objects.for_tenant(world.tenant).get()
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    reply = Message.objects.for_tenant(world.tenant).get(role="assistant")
    assert [role for role, _ in messages_of(conversation)] == ["user", "assistant"]
    assert user.content == "Do you ship to Jeddah?"
    assert (reply.reply_to_id, reply.metadata["language"]) == (user.pk, "en")
    assert "failure" not in reply.metadata
    assert (user.author_id, user.client_message_id) == (None, None)
    assert (fresh(conversation).language, fresh(conversation).unread_for_agents) == ("en", 1)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"kind": "customer"}, {"inbox": ["A customer conversation needs an inbox."]}),
        ({"kind": "customer", "inbox": 987654321}, {"inbox": ['Invalid pk "987654321" - object does not exist.']}),
        ({"kind": "robot"}, {"kind": ['"robot" is not a valid choice.']}),
        ({}, {"kind": ["This field is required."]}),
        ({"kind": "companion", "tenant": 1}, {"tenant": ["This field cannot be written."]}),
        ({"kind": "companion", "message": "   "}, {"message": ["The message is empty."]}),
        ({"kind": "companion", "message": "x" * 4001}, {"message": ["The message is longer than 4000 characters."]}),
        ({"kind": "companion", "title": "t" * 201}, {"title": ["Ensure this field has no more than 200 characters."]}),
    ],
)
def test_invalid_create_is_400_and_creates_nothing(two_tenants, data, fields):
    response = two_tenants.a.api.post("/api/v1/conversations", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert Conversation.objects.all_tenants().count() == 0


def test_another_tenants_inbox_is_refused_like_a_missing_one(two_tenants):
    other = web_inbox(two_tenants.b)
    companion_inbox = services.inbox_get_or_create(two_tenants.a.tenant, Inbox.ChannelType.COMPANION)

    for inbox_id in (other.pk, companion_inbox.pk):
        response = two_tenants.a.api.post(
            "/api/v1/conversations", {"kind": "customer", "inbox": inbox_id}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == invalid({"inbox": [f'Invalid pk "{inbox_id}" - object does not exist.']})
    response = two_tenants.a.api.post(
        "/api/v1/conversations", {"kind": "companion", "inbox": web_inbox(two_tenants.a).pk}, format="json"
    )
    assert response.json() == invalid({"inbox": ["A companion conversation has no inbox to choose."]})
    assert Conversation.objects.all_tenants().count() == 0


# --- retrieve and patch -------------------------------------------------------------------------


def test_retrieve(two_tenants):
    conversation = customer(two_tenants.a, priority="urgent")

    response = two_tenants.a.api.get(f"/api/v1/conversations/{conversation.pk}")

    assert response.status_code == 200
    assert response.json() == conversation_body(conversation)
    assert response.json()["priority"] == "urgent"


@pytest.mark.parametrize("path", ["/api/v1/conversations/987654321", "/api/v1/conversations/abc"])
def test_missing_conversation_is_404_in_the_error_format(two_tenants, path):
    for suffix in ("", "/messages"):
        response = two_tenants.a.api.get(path + suffix)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path + suffix


def test_patch_changes_status_priority_assignee_and_labels(two_tenants):
    world = two_tenants.a
    agent, _, _ = world.member("agent")
    conversation = customer(world)

    response = world.api.patch(
        f"/api/v1/conversations/{conversation.pk}",
        {"status": "pending", "priority": "high", "assignee": agent.pk, "labels": [" VIP ", "vip", "Returns"]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == conversation_body(conversation)
    row = fresh(conversation)
    assert (row.status, row.priority, row.assignee_id, row.labels) == ("pending", "high", agent.pk, ["vip", "returns"])
    response = world.api.patch(f"/api/v1/conversations/{conversation.pk}/", {"assignee": None}, format="json")
    assert (response.status_code, response.json()["assignee"], fresh(conversation).assignee_id) == (200, None, None)


def test_patch_snoozes_until_a_time_and_resolving_clears_it(two_tenants):
    world = two_tenants.a
    conversation = customer(world)
    later = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)

    response = world.api.patch(
        f"/api/v1/conversations/{conversation.pk}",
        {"status": "snoozed", "snoozed_until": later.isoformat()},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("snoozed", iso(later))
    response = world.api.patch(f"/api/v1/conversations/{conversation.pk}", {"status": "resolved"}, format="json")
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("resolved", None)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"status": "closed"}, {"status": ['"closed" is not a valid choice.']}),
        ({"priority": "asap"}, {"priority": ['"asap" is not a valid choice.']}),
        ({"status": "snoozed"}, {"snoozed_until": ["Snoozing needs a time in the future."]}),
        (
            {"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00Z"},
            {"snoozed_until": ["Snoozing needs a time in the future."]},
        ),
        ({"assignee": 987654321}, {"assignee": ["The assignee is not a member of this business."]}),
        ({"labels": "vip"}, {"labels": ['Expected a list of items but got type "str".']}),
        ({"labels": ["x" * 51]}, {"labels": {"0": ["Ensure this field has no more than 50 characters."]}}),
        ({"handled_by": "human"}, {"handled_by": ["This field cannot be written."]}),
        ({"priority": "high", "tenant": 2}, {"tenant": ["This field cannot be written."]}),
        ({"kind": "companion"}, {"kind": ["This field cannot be written."]}),
    ],
)
def test_invalid_patch_is_400_and_changes_nothing(two_tenants, data, fields):
    conversation = customer(two_tenants.a)
    before = state(conversation)

    response = two_tenants.a.api.patch(f"/api/v1/conversations/{conversation.pk}", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state(conversation) == before


def test_assignee_from_another_tenant_is_refused_like_a_missing_user(two_tenants):
    conversation = customer(two_tenants.a)
    before = state(conversation)

    response = two_tenants.a.api.patch(
        f"/api/v1/conversations/{conversation.pk}", {"assignee": two_tenants.b.owner.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"assignee": ["The assignee is not a member of this business."]})
    assert state(conversation) == before


# --- messages -----------------------------------------------------------------------------------


def test_messages_are_listed_oldest_first_with_notes_for_staff(two_tenants):
    world = two_tenants.a
    conversation = customer(world)
    user, _ = services.message_post(world.tenant, conversation, content="Where is my order?", client_message_id="c1")
    reply, _ = services.agent_reply(world.tenant, conversation, world.owner, "On its way.")
    note = services.note_add(world.tenant, conversation, world.owner, "Customer is a VIP")
    other = customer(two_tenants.b)
    services.message_post(two_tenants.b.tenant, other, content="other tenant")

    response = world.api.get(f"/api/v1/conversations/{conversation.pk}/messages")

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [message_body(user), message_body(reply), message_body(note)],
    }
    assert [row["role"] for row in response.json()["results"]] == ["user", "agent", "note"]
    assert response.json()["results"][2]["author"] == world.owner.email


def test_messages_after_an_id(two_tenants):
    world = two_tenants.a
    conversation = customer(world)
    made = [services.message_post(world.tenant, conversation, content=f"m{n}")[0] for n in range(4)]

    assert ids(world.api.get(f"/api/v1/conversations/{conversation.pk}/messages?after={made[1].pk}")) == [
        made[2].pk,
        made[3].pk,
    ]
    response = world.api.get(f"/api/v1/conversations/{conversation.pk}/messages?after=abc")
    assert (response.status_code, response.json()) == (400, invalid({"after": ["Enter a number."]}))


def test_messages_are_cursor_paged_and_page_size_is_at_most_100(two_tenants):
    world = two_tenants.a
    conversation = customer(world)
    Message.objects.for_tenant(world.tenant).bulk_create(
        [Message(tenant=world.tenant, conversation=conversation, role="user", content=f"m{n}") for n in range(105)]
    )
    made = list(Message.objects.for_tenant(world.tenant).order_by("id").values_list("id", flat=True))
    path = f"/api/v1/conversations/{conversation.pk}/messages"

    first = world.api.get(f"{path}?page_size=2").json()
    assert [row["id"] for row in first["results"]] == made[:2]
    assert first["previous"] is None
    assert first["next"].startswith(f"http://testserver{path}?cursor=")
    second = world.api.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == made[2:4]
    assert second["previous"] is not None
    assert ids(world.api.get(path)) == made[:25]
    capped = world.api.get(f"{path}?page_size=500").json()
    assert [row["id"] for row in capped["results"]] == made[:100]
    rest = world.api.get(capped["next"]).json()
    assert ([row["id"] for row in rest["results"]], rest["next"]) == (made[100:], None)


@pytest.mark.django_db(transaction=True)
def test_a_user_message_gets_the_offline_reply(two_tenants, turns_run_at_once):
    world = two_tenants.a
    conversation = services.conversation_start_companion(world.tenant, world.owner)

    response = world.api.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "How were sales?", "client_message_id": "api-1", "role": "user"},
        format="json",
    )

    assert response.status_code == 201
    user = Message.objects.for_tenant(world.tenant).get(role="user")
    assert response.json() == message_body(user)
    assert (user.content, user.client_message_id, user.author_id) == ("How were sales?", "api-1", world.owner.pk)
    reply = Message.objects.for_tenant(world.tenant).get(role="assistant")
    assert reply.reply_to_id == user.pk
    assert reply.content.startswith(f"Here is {world.tenant.name}'s performance over the last 30 days:")
    assert reply.metadata["language"] == "en"
    listed = world.api.get(f"/api/v1/conversations/{conversation.pk}/messages").json()["results"]
    assert [(row["role"], row["reply_to"]) for row in listed] == [("user", None), ("assistant", user.pk)]


@pytest.mark.django_db(transaction=True)
def test_posting_a_message_twice_is_idempotent(two_tenants, turns_run_at_once):
    world = two_tenants.a
    conversation = customer(world)
    path = f"/api/v1/conversations/{conversation.pk}/messages"
    data = {"content": "Is the oud in stock?", "client_message_id": "same-1"}

    first = world.api.post(path, data, format="json")
    second = world.api.post(path, data, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    rows = messages_of(conversation)
    assert [role for role, _ in rows] == ["user", "assistant"]
    assert rows[0][1] == "Is the oud in stock?"
    assert fresh(conversation).unread_for_agents == 1


@pytest.mark.django_db(transaction=True)
def test_after_take_over_a_user_message_gets_no_ai_reply(two_tenants, turns_run_at_once):
    world = two_tenants.a
    conversation = customer(world)
    path = f"/api/v1/conversations/{conversation.pk}/messages"

    assert world.api.post(f"/api/v1/conversations/{conversation.pk}/take-over", format="json").status_code == 200
    response = world.api.post(path, {"content": "Where is my order?"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "user"
    reply = world.api.post(path, {"content": "It ships today.", "role": "agent"}, format="json")

    assert reply.status_code == 201
    assert (reply.json()["role"], reply.json()["author"]) == ("agent", world.owner.email)
    assert messages_of(conversation) == [
        ("system", services.TAKEOVER_NOTICE["ar"]),
        ("user", "Where is my order?"),
        ("agent", "It ships today."),
    ]
    # handed back, the AI answers again
    assert world.api.post(f"/api/v1/conversations/{conversation.pk}/hand-back", format="json").status_code == 200
    world.api.post(path, {"content": "Thanks"}, format="json")
    assert [role for role, _ in messages_of(conversation)][3:] == ["system", "user", "assistant"]


def test_an_agent_reply_is_idempotent_and_starts_no_turn(two_tenants, django_capture_on_commit_callbacks):
    world = two_tenants.a
    agent, _, agent_api = world.member("agent")
    conversation = customer(world)
    path = f"/api/v1/conversations/{conversation.pk}/messages"
    data = {"content": "Hello, how can I help?", "role": "agent", "client_message_id": "a-1"}

    with pytest.MonkeyPatch.context() as patch:
        enqueued: list[Any] = []
        patch.setattr("conversations.tasks.conversation_turn_task.delay", lambda *args: enqueued.append(args))
        with django_capture_on_commit_callbacks(execute=True):
            first = agent_api.post(path, data, format="json")
            second = agent_api.post(path, data, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert (first.json()["role"], first.json()["author"]) == ("agent", agent.email)
    assert messages_of(conversation) == [("agent", "Hello, how can I help?")]
    assert enqueued == []
    assert fresh(conversation).unread_for_user == 1


def test_an_agent_reply_in_a_companion_conversation_is_400(two_tenants):
    conversation = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner)

    response = two_tenants.a.api.post(
        f"/api/v1/conversations/{conversation.pk}/messages", {"content": "hi", "role": "agent"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"role": ["Agents answer customers: use role user in the companion."]})
    assert messages_of(conversation) == []


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"content": ""}, {"content": ["The message is empty."]}),
        ({"content": "   \n "}, {"content": ["The message is empty."]}),
        ({"content": "x" * 4001}, {"content": ["The message is longer than 4000 characters."]}),
        ({}, {"content": ["This field is required."]}),
        ({"content": None}, {"content": ["This field may not be null."]}),
        ({"content": "hi", "role": "assistant"}, {"role": ['"assistant" is not a valid choice.']}),
        ({"content": "hi", "role": "note"}, {"role": ['"note" is not a valid choice.']}),
        ({"content": "hi", "metadata": {"failure": True}}, {"metadata": ["This field cannot be written."]}),
        (
            {"content": "hi", "client_message_id": "c" * 101},
            {"client_message_id": ["Ensure this field has no more than 100 characters."]},
        ),
    ],
)
def test_invalid_message_is_400_and_writes_nothing(two_tenants, data, fields):
    conversation = customer(two_tenants.a)
    before = state(conversation)

    response = two_tenants.a.api.post(f"/api/v1/conversations/{conversation.pk}/messages", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state(conversation) == before


def test_exactly_4000_characters_are_accepted(two_tenants):
    conversation = customer(two_tenants.a)

    response = two_tenants.a.api.post(
        f"/api/v1/conversations/{conversation.pk}/messages", {"content": "x" * 4000}, format="json"
    )

    assert response.status_code == 201
    assert len(response.json()["content"]) == 4000


def test_more_than_20_messages_a_minute_per_token_and_conversation_are_429(two_tenants):
    world = two_tenants.a
    conversation = customer(world)
    path = f"/api/v1/conversations/{conversation.pk}/messages"
    for number in range(20):
        response = world.api.post(path, {"content": f"m{number}", "client_message_id": f"m{number}"}, format="json")
        assert response.status_code == 201, number

    refused = world.api.post(path, {"content": "m20", "client_message_id": "m20"}, format="json")
    repeat = world.api.post(path, {"content": "m0", "client_message_id": "m0"}, format="json")
    _, _, colleague = world.member("agent")
    other_caller = colleague.post(path, {"content": "from a colleague"}, format="json")
    other_conversation = world.api.post(
        f"/api/v1/conversations/{customer(world).pk}/messages", {"content": "elsewhere"}, format="json"
    )

    assert refused.status_code == 429
    body = refused.json()["error"]
    assert (body["status"], body["code"]) == (429, "throttled")
    assert 0 < int(body["retry_after"]) <= 60
    assert repeat.status_code == 200  # a repeat is answered, and never counted
    assert (other_caller.status_code, other_conversation.status_code) == (201, 201)
    assert Message.objects.for_tenant(world.tenant).filter(conversation=conversation).count() == 21
    assert not Message.objects.for_tenant(world.tenant).filter(client_message_id="m20").exists()


# --- take-over, hand-back, notes ----------------------------------------------------------------


def test_take_over_and_hand_back(two_tenants):
    world = two_tenants.a
    agent, _, agent_api = world.member("agent")
    conversation = customer(world)

    response = agent_api.post(f"/api/v1/conversations/{conversation.pk}/take-over")

    assert response.status_code == 200
    assert response.json() == conversation_body(conversation)
    assert (response.json()["handled_by"], response.json()["assignee"]) == ("human", agent.pk)
    assert messages_of(conversation) == [("system", services.TAKEOVER_NOTICE["ar"])]

    response = agent_api.post(f"/api/v1/conversations/{conversation.pk}/hand-back/")

    assert response.status_code == 200
    assert response.json() == conversation_body(conversation)
    assert response.json()["handled_by"] == "ai"
    assert messages_of(conversation) == [
        ("system", services.TAKEOVER_NOTICE["ar"]),
        ("system", services.HANDBACK_NOTICE["ar"]),
    ]


@pytest.mark.parametrize("action", ["take-over", "hand-back"])
def test_a_companion_conversation_is_not_taken_over(two_tenants, action):
    conversation = services.conversation_start_companion(two_tenants.a.tenant, two_tenants.a.owner)
    before = state(conversation)

    response = two_tenants.a.api.post(f"/api/v1/conversations/{conversation.pk}/{action}")

    assert response.status_code == 400
    assert response.json() == invalid({"kind": ["Only customer conversations are taken over and handed back."]})
    assert state(conversation) == before


def test_a_note_is_private_and_listed_for_staff(two_tenants):
    world = two_tenants.a
    agent, _, agent_api = world.member("agent")
    conversation = customer(world)

    response = agent_api.post(
        f"/api/v1/conversations/{conversation.pk}/notes", {"content": "  Prefers WhatsApp  "}, format="json"
    )

    assert response.status_code == 201
    note = Message.objects.for_tenant(world.tenant).get()
    assert response.json() == message_body(note)
    assert (note.role, note.content, note.author_id) == ("note", "Prefers WhatsApp", agent.pk)
    assert fresh(conversation).unread_for_user == 0  # the customer is never told
    listed = world.api.get(f"/api/v1/conversations/{conversation.pk}/messages").json()["results"]
    assert [(row["role"], row["content"]) for row in listed] == [("note", "Prefers WhatsApp")]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"content": " "}, {"content": ["The message is empty."]}),
        ({"content": "n" * 4001}, {"content": ["The message is longer than 4000 characters."]}),
        ({"content": "ok", "role": "user"}, {"role": ["This field cannot be written."]}),
    ],
)
def test_invalid_note_is_400_and_writes_nothing(two_tenants, data, fields):
    conversation = customer(two_tenants.a)

    response = two_tenants.a.api.post(f"/api/v1/conversations/{conversation.pk}/notes", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert messages_of(conversation) == []


# --- another tenant: 404 everywhere, nothing changed --------------------------------------------


def test_another_tenants_conversation_is_404_to_read(two_tenants):
    conversation = customer(two_tenants.a)
    services.message_post(two_tenants.a.tenant, conversation, content="hello")

    two_tenants.assert_isolated(f"/api/v1/conversations/{conversation.pk}")
    two_tenants.assert_isolated(f"/api/v1/conversations/{conversation.pk}/messages")


def test_another_tenants_conversation_patch_is_404_and_changes_nothing(two_tenants):
    conversation = customer(two_tenants.a)

    two_tenants.assert_isolated(
        f"/api/v1/conversations/{conversation.pk}", method="patch", data={"priority": "urgent", "labels": ["a"]}
    )
    before = state(conversation)
    response = two_tenants.b.api.patch(
        f"/api/v1/conversations/{conversation.pk}", {"status": "resolved", "priority": "bogus"}, format="json"
    )
    assert (response.status_code, response.json()) == (404, NOT_FOUND)  # no probing through 400s
    assert state(conversation) == before
    assert (fresh(conversation).priority, fresh(conversation).labels) == ("urgent", ["a"])


def test_another_tenants_messages_post_is_404_and_writes_nothing(two_tenants):
    conversation = customer(two_tenants.a)
    path = f"/api/v1/conversations/{conversation.pk}/messages"

    two_tenants.assert_isolated(path, method="post", data={"content": "hi", "client_message_id": "x"})
    for data in ({"content": "agent", "role": "agent"}, {"content": ""}):
        response = two_tenants.b.api.post(path, data, format="json")
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert messages_of(conversation) == [("user", "hi")]


@pytest.mark.parametrize("action", ["take-over", "hand-back", "notes"])
def test_another_tenants_actions_are_404_and_change_nothing(two_tenants, action):
    conversation = customer(two_tenants.a)
    services.conversation_take_over(two_tenants.a.tenant, conversation.pk, two_tenants.a.owner)
    before = state(conversation)
    path = f"/api/v1/conversations/{conversation.pk}/{action}"

    response = two_tenants.b.api.post(path, {"content": "note"}, format="json")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert state(conversation) == before
    # and A reaches it
    two_tenants.assert_isolated(path, method="post", data={"content": "note"})


# --- roles and anonymous callers ----------------------------------------------------------------


def test_viewer_reads_but_cannot_write(two_tenants):
    world = two_tenants.a
    _, _, viewer = world.member("viewer")
    conversation = customer(world)
    services.message_post(world.tenant, conversation, content="hello")
    before = state(conversation)
    base = f"/api/v1/conversations/{conversation.pk}"

    assert viewer.get("/api/v1/conversations").status_code == 200
    assert viewer.get(base).status_code == 200
    assert viewer.get(f"{base}/messages").status_code == 200
    writes = [
        ("post", "/api/v1/conversations", {"kind": "companion", "message": "hi"}),
        ("patch", base, {"priority": "urgent"}),
        ("post", f"{base}/messages", {"content": "hi"}),
        ("post", f"{base}/messages", {"content": "hi", "role": "agent"}),
        ("post", f"{base}/take-over", {}),
        ("post", f"{base}/hand-back", {}),
        ("post", f"{base}/notes", {"content": "secret"}),
    ]
    for method, path, data in writes:
        response = getattr(viewer, method)(path, data, format="json")
        assert (response.status_code, response.json()) == (403, ROLE_CANNOT_CHANGE), path

    assert state(conversation) == before
    assert Conversation.objects.all_tenants().count() == 1


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agents_and_admins_may_write(two_tenants, role):
    _, _, client = two_tenants.a.member(role)
    conversation = customer(two_tenants.a)

    response = client.patch(f"/api/v1/conversations/{conversation.pk}", {"priority": "high"}, format="json")
    assert (response.status_code, fresh(conversation).priority) == (200, "high")
    response = client.post(f"/api/v1/conversations/{conversation.pk}/notes", {"content": "n"}, format="json")
    assert response.status_code == 201


def test_anonymous_is_401_everywhere_and_writes_nothing(two_tenants):
    conversation = customer(two_tenants.a)
    before = state(conversation)
    base = f"/api/v1/conversations/{conversation.pk}"
    client = APIClient()

    requests = [
        ("get", "/api/v1/conversations", None),
        ("post", "/api/v1/conversations", {"kind": "companion"}),
        ("get", base, None),
        ("patch", base, {"priority": "urgent"}),
        ("get", f"{base}/messages", None),
        ("post", f"{base}/messages", {"content": "hi"}),
        ("post", f"{base}/take-over", {}),
        ("post", f"{base}/hand-back", {}),
        ("post", f"{base}/notes", {"content": "n"}),
    ]
    for method, path, data in requests:
        response = getattr(client, method)(path, data, format="json")
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Token"
        assert response.json() == NOT_AUTHENTICATED

    assert state(conversation) == before
    assert Conversation.objects.all_tenants().count() == 1


def test_delete_and_put_are_405(two_tenants):
    conversation = customer(two_tenants.a)
    before = state(conversation)

    for method in ("delete", "put"):
        response = getattr(two_tenants.a.api, method)(
            f"/api/v1/conversations/{conversation.pk}", {"priority": "urgent"}, format="json"
        )
        assert response.status_code == 405
    assert state(conversation) == before
