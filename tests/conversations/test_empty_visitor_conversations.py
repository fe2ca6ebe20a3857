"""Conversations nobody wrote in: the public chat opens one on every first visit (crawlers,
link previews, visitors who leave without a word). Operators' lists, counts and live updates
show a customer conversation only once it has a message; a beat job deletes the old empty
web-visitor ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import selectors, services
from conversations.models import Conversation, ConversationState, Inbox, Message
from conversations.tasks import empty_visitor_conversations_prune_task
from conversations.visitors import COOKIE_NAME, visitor_id_from_cookie
from crm import services as crm_services
from crm.models import Contact, FollowUp, StockAlert
from morvo.asgi import application
from morvo.celery import app as celery_app
from morvo.models import Tenant
from tests.factories import ContactFactory, ProductFactory

ADMIN_LIST = "/admin/conversations/conversation/"
SAME_ORIGIN = {"HTTP_ORIGIN": "http://testserver"}
NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "Not found."}}


@pytest.fixture(autouse=True)
def english_and_a_day_to_live(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"
    settings.CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS = 24


def visit(tenant: Tenant, visitor_id: str, title: str = "") -> Conversation:
    return services.conversation_start_visitor(tenant, visitor_id, title=title or f"visit of {visitor_id}")


def write_in(conversation: Conversation, role: str = Message.Role.USER, content: str = "hello") -> Message:
    """A message written directly (no push, no turn, the conversation's row untouched)."""
    return Message.objects.all_tenants().create(
        tenant_id=conversation.tenant_id, conversation=conversation, role=role, content=content
    )


def aged(conversation: Conversation, hours: float) -> Conversation:
    """As if opened ``hours`` ago (``created_at`` is set on insert, so it is moved after)."""
    Conversation.objects.all_tenants().filter(pk=conversation.pk).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )
    return conversation


def existing(*conversations: Conversation) -> set[int]:
    ids = [conversation.pk for conversation in conversations]
    return set(Conversation.objects.all_tenants().filter(pk__in=ids).values_list("pk", flat=True))


def admin_titles(client: Client, query: str = "") -> list[str]:
    response = client.get(f"{ADMIN_LIST}{query}")
    assert response.status_code == 200
    return [conversation.title for conversation in response.context["cl"].result_list]


def api_ids(api: Any, query: str = "") -> list[int]:
    response = api.get(f"/api/v1/conversations{query}")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- the admin's live list and its counts --------------------------------------------------------


def test_admin_list_and_counts_show_a_visitor_conversation_once_it_has_a_message(two_tenants: Any) -> None:
    world = two_tenants.a
    empty = visit(world.tenant, "v-empty", "empty visit")
    written = visit(world.tenant, "v-written", "written visit")
    write_in(written)
    write_in(visit(two_tenants.b.tenant, "v-beta", "beta visit"))

    response = world.web.get(ADMIN_LIST)
    assert [conversation.title for conversation in response.context["cl"].result_list] == ["written visit"]
    assert {value: total for value, _label, total in response.context["status_counts"]} == {
        "open": 1,
        "pending": 0,
        "snoozed": 0,
        "resolved": 0,
    }
    assert [(value, total) for value, _label, total in response.context["priority_counts"]] == [
        ("urgent", 0),
        ("high", 0),
        ("medium", 0),
        ("low", 1),
    ]
    # The filters' own counts (Django's facets) come from the same list.
    response = world.web.get(f"{ADMIN_LIST}?_facets=1")
    status_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "status")
    assert [choice["display"] for choice in status_filter.choices(response.context["cl"])][1:] == [
        "Open (1)",
        "Pending (0)",
        "Snoozed (0)",
        "Resolved (0)",
    ]

    write_in(empty, role=Message.Role.SYSTEM)  # any role counts, not only the customer's

    response = world.web.get(ADMIN_LIST)
    assert sorted(conversation.title for conversation in response.context["cl"].result_list) == [
        "empty visit",
        "written visit",
    ]
    assert {value: total for value, _label, total in response.context["status_counts"]} == {
        "open": 2,
        "pending": 0,
        "snoozed": 0,
        "resolved": 0,
    }
    assert "beta visit" not in response.content.decode()
    assert admin_titles(two_tenants.b.web) == ["beta visit"]


def test_admin_list_keeps_out_companion_chats_even_with_messages(two_tenants: Any) -> None:
    world = two_tenants.a
    companion = services.conversation_start_companion(world.tenant, world.owner, "my plans")
    write_in(companion)
    write_in(visit(world.tenant, "v-1", "a customer"))
    assert admin_titles(world.web) == ["a customer"]


def test_admin_page_of_an_empty_conversation_opens_for_its_tenant_only(two_tenants: Any) -> None:
    empty = visit(two_tenants.a.tenant, "v-empty", "empty visit")
    page = f"{ADMIN_LIST}{empty.pk}/change/"

    assert two_tenants.a.web.get(page).status_code == 200
    assert two_tenants.b.web.get(page).status_code == 404
    # An operator can still act on it (here: resolve it) through the page's actions.
    response = two_tenants.a.web.post(f"{ADMIN_LIST}{empty.pk}/act/resolve/")
    assert response.status_code == 302
    assert Conversation.objects.all_tenants().get(pk=empty.pk).status == Conversation.Status.RESOLVED
    response = two_tenants.b.web.post(f"{ADMIN_LIST}{empty.pk}/act/reopen/")
    assert response.status_code == 404
    assert Conversation.objects.all_tenants().get(pk=empty.pk).status == Conversation.Status.RESOLVED


# --- the REST list ---------------------------------------------------------------------------------


def test_api_list_shows_a_customer_conversation_once_it_has_a_message(two_tenants: Any) -> None:
    world = two_tenants.a
    empty = visit(world.tenant, "v-empty")
    written = visit(world.tenant, "v-written")
    write_in(written)
    theirs = visit(two_tenants.b.tenant, "v-beta")
    write_in(theirs)
    own_companion = services.conversation_start_companion(world.tenant, world.owner, "empty plans")

    # The companion chat (opened last, so first) is listed although empty: it is not a customer's.
    assert api_ids(world.api) == [own_companion.pk, written.pk]
    assert api_ids(world.api, "?kind=customer") == [written.pk]
    assert api_ids(two_tenants.b.api) == [theirs.pk]

    write_in(empty, role=Message.Role.NOTE)

    assert set(api_ids(world.api, "?kind=customer")) == {empty.pk, written.pk}
    assert api_ids(two_tenants.b.api) == [theirs.pk]


def test_api_detail_of_an_empty_conversation_opens_for_its_tenant_only(two_tenants: Any) -> None:
    empty = visit(two_tenants.a.tenant, "v-empty")

    response = two_tenants.a.api.get(f"/api/v1/conversations/{empty.pk}")
    assert (response.status_code, response.json()["id"]) == (200, empty.pk)
    response = two_tenants.a.api.get(f"/api/v1/conversations/{empty.pk}/messages")
    assert (response.status_code, response.json()["results"]) == (200, [])
    two_tenants.assert_isolated(f"/api/v1/conversations/{empty.pk}")
    response = two_tenants.b.api.patch(f"/api/v1/conversations/{empty.pk}", {"priority": "urgent"}, format="json")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert Conversation.objects.all_tenants().get(pk=empty.pk).priority == Conversation.Priority.LOW


def test_api_and_admin_lists_take_a_fixed_number_of_queries(two_tenants: Any) -> None:
    """The message check is a subquery: listing more conversations costs no more queries."""
    world = two_tenants.a

    def queries(read: Any) -> int:
        with CaptureQueriesContext(connection) as captured:
            read()
        return len(captured)

    write_in(visit(world.tenant, "v-0"))
    visit(world.tenant, "v-empty-0")
    api_ids(world.api), admin_titles(world.web)  # warm whatever is read once per process
    few_api, few_admin = queries(lambda: api_ids(world.api)), queries(lambda: admin_titles(world.web))
    for number in range(1, 6):
        write_in(visit(world.tenant, f"v-{number}"))
        visit(world.tenant, f"v-empty-{number}")
    assert len(api_ids(world.api)) == 6
    assert queries(lambda: api_ids(world.api)) == few_api
    assert queries(lambda: admin_titles(world.web)) == few_admin


# --- the operators' live list ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_live_list_hears_of_a_visitor_conversation_only_once_it_has_a_message(two_tenants: Any) -> None:
    world = two_tenants.a
    empty = await database_sync_to_async(visit)(world.tenant, "v-empty")
    theirs = await database_sync_to_async(visit)(two_tenants.b.tenant, "v-beta")
    await database_sync_to_async(write_in)(theirs)
    socket = WebsocketCommunicator(application, f"/ws/inbox/?token={world.token}")
    connected, _ = await socket.connect()
    assert connected

    await database_sync_to_async(services.conversation_update)(world.tenant, empty.pk, priority="high")
    assert await socket.receive_nothing(timeout=1)
    await database_sync_to_async(services.conversation_update)(two_tenants.b.tenant, theirs.pk, priority="high")
    assert await socket.receive_nothing(timeout=1)

    await database_sync_to_async(write_in)(empty)
    await database_sync_to_async(services.conversation_update)(world.tenant, empty.pk, priority="urgent")
    frame = await socket.receive_json_from(timeout=10)
    assert (frame["type"], frame["id"], frame["priority"]) == ("conversation", empty.pk, "urgent")
    assert await socket.receive_nothing(timeout=1)
    await socket.disconnect()


def test_the_listing_condition_is_one_helper_used_by_every_list(two_tenants: Any) -> None:
    tenant = two_tenants.a.tenant
    empty = visit(tenant, "v-empty")
    written = visit(tenant, "v-written")
    write_in(written)
    companion = services.conversation_start_companion(tenant, two_tenants.a.owner)

    listed = selectors.conversations_listed_for_operators(Conversation.objects.for_tenant(tenant))
    assert set(listed.values_list("pk", flat=True)) == {written.pk, companion.pk}
    write_in(empty, role=Message.Role.ASSISTANT)
    assert set(listed.all().values_list("pk", flat=True)) == {empty.pk, written.pk, companion.pk}


# --- the prune ---------------------------------------------------------------------------------------


def test_prune_deletes_only_old_empty_web_visitor_conversations(two_tenants: Any) -> None:
    tenant, other = two_tenants.a.tenant, two_tenants.b.tenant
    old_empty = aged(visit(tenant, "v-old"), 25)
    old_empty_elsewhere = aged(visit(other, "v-old-beta"), 25)
    young_empty = aged(visit(tenant, "v-young"), 23)
    old_written = aged(visit(tenant, "v-written"), 25)
    kept_message = write_in(old_written)
    old_companion = aged(services.conversation_start_companion(tenant, two_tenants.a.owner), 25)
    whatsapp = Inbox.objects.for_tenant(tenant).create(tenant=tenant, name="WA", channel_type="whatsapp")
    old_channel = aged(services.conversation_start_customer(tenant, whatsapp, "from whatsapp"), 25)
    old_labelled = aged(visit(tenant, "v-labelled"), 25)
    services.conversation_update(tenant, old_labelled.pk, labels=["vip"])

    assert services.empty_visitor_conversations_prune() == 3

    everything = (old_empty, old_empty_elsewhere, young_empty, old_written, old_companion, old_channel, old_labelled)
    assert existing(*everything) == {young_empty.pk, old_written.pk, old_companion.pk, old_channel.pk}
    assert Message.objects.all_tenants().filter(pk=kept_message.pk, conversation=old_written).exists()
    assert services.empty_visitor_conversations_prune() == 0  # a second run finds nothing to do


def test_prune_follows_the_setting(two_tenants: Any, settings: Any) -> None:
    settings.CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS = 2
    three_hours = aged(visit(two_tenants.a.tenant, "v-3h"), 3)
    ninety_minutes = aged(visit(two_tenants.a.tenant, "v-90m"), 1.5)
    assert services.empty_visitor_conversations_prune() == 1
    assert existing(three_hours, ninety_minutes) == {ninety_minutes.pk}
    # Never younger than an hour, whatever the setting: the visitor may still be on the page.
    settings.CONVERSATIONS_EMPTY_VISITOR_TTL_HOURS = 0
    half_an_hour = aged(visit(two_tenants.a.tenant, "v-30m"), 0.5)
    assert services.empty_visitor_conversations_prune() == 1
    assert existing(ninety_minutes, half_an_hour) == {half_an_hour.pk}


def test_prune_works_in_bounded_batches(two_tenants: Any) -> None:
    conversations = [aged(visit(two_tenants.a.tenant, f"v-{number}"), 30) for number in range(5)]
    assert services.empty_visitor_conversations_prune(batch_size=2, max_batches=2) == 4
    assert len(existing(*conversations)) == 1
    assert services.empty_visitor_conversations_prune(batch_size=2, max_batches=2) == 1
    assert existing(*conversations) == set()


def test_prune_keeps_a_conversation_other_rows_point_at(two_tenants: Any) -> None:
    """A follow-up, a stock alert or a conversation state would lose their way back to the
    visitor: such a conversation stays, however old and empty."""
    tenant = two_tenants.a.tenant
    contact = ContactFactory(tenant=tenant)
    followed = aged(visit(tenant, "v-follow-up"), 48)
    follow_up = crm_services.follow_up_schedule(
        tenant, contact=contact, conversation=followed, due_at=timezone.now() + timedelta(days=1), reason="call back"
    )
    alerted = aged(visit(tenant, "v-alert"), 48)
    alert, _ = crm_services.stock_alert_create(
        tenant, contact=contact, product=ProductFactory(tenant=tenant), conversation=alerted
    )
    with_state = aged(visit(tenant, "v-state"), 48)
    services.conversation_state_get(tenant, with_state)
    plain = aged(visit(tenant, "v-plain"), 48)

    assert services.empty_visitor_conversations_prune() == 1

    assert existing(followed, alerted, with_state, plain) == {followed.pk, alerted.pk, with_state.pk}
    assert FollowUp.objects.for_tenant(tenant).get(pk=follow_up.pk).conversation_id == followed.pk
    assert StockAlert.objects.for_tenant(tenant).get(pk=alert.pk).conversation_id == alerted.pk
    assert ConversationState.objects.for_tenant(tenant).filter(conversation=with_state).count() == 1


def test_prune_keeps_the_contact_a_visitor_left_with_the_profile_form(client: Client, tenant_world: Any) -> None:
    slug = tenant_world.tenant.slug
    client.get(f"/c/{slug}/")
    response = client.post(f"/c/{slug}/profile/", {"name": "نورة", "email": "noura@example.com"}, **SAME_ORIGIN)
    assert response.status_code == 302
    conversation = Conversation.objects.for_tenant(tenant_world.tenant).get()
    assert conversation.contact_id is not None
    aged(conversation, 25)

    assert services.empty_visitor_conversations_prune() == 1

    assert existing(conversation) == set()
    contact = Contact.objects.for_tenant(tenant_world.tenant).get()
    assert (contact.pk, contact.name, contact.email) == (conversation.contact_id, "نورة", "noura@example.com")


def test_the_beat_job_runs_the_prune_every_hour(settings: Any, tenant_world: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["conversations-empty-visitor-prune"]
    assert entry == {
        "task": "conversations.tasks.empty_visitor_conversations_prune_task",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    }
    assert celery_app.tasks[entry["task"]].name == empty_visitor_conversations_prune_task.name
    assert empty_visitor_conversations_prune_task.ignore_result is True
    old_empty = aged(visit(tenant_world.tenant, "v-old"), 25)
    young_empty = visit(tenant_world.tenant, "v-young")

    assert empty_visitor_conversations_prune_task.apply().get() == 1
    assert existing(old_empty, young_empty) == {young_empty.pk}


@pytest.mark.django_db(transaction=True)
async def test_after_the_prune_the_visitor_gets_a_fresh_conversation_that_works(tenant_world: Any) -> None:
    client = Client()
    slug = tenant_world.tenant.slug
    first = await database_sync_to_async(client.get)(f"/c/{slug}/")
    cookie = first.cookies[COOKIE_NAME].value
    visitor_id = visitor_id_from_cookie(cookie)
    pruned = await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).get)()
    await database_sync_to_async(aged)(pruned, 25)

    assert await database_sync_to_async(services.empty_visitor_conversations_prune)() == 1

    second = await database_sync_to_async(client.get)(f"/c/{slug}/")
    assert second.status_code == 200
    fresh = await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).get)()
    assert fresh.pk != pruned.pk
    assert fresh.visitor_id == visitor_id
    assert f'"socketPath": "/ws/chat/{fresh.pk}/"' in second.content.decode()

    headers = [(b"cookie", f"{COOKIE_NAME}={second.cookies[COOKIE_NAME].value}".encode())]
    stale = WebsocketCommunicator(application, f"/ws/chat/{pruned.pk}/", headers=headers)
    assert (await stale.connect())[0]
    assert await stale.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}

    socket = WebsocketCommunicator(application, f"/ws/chat/{fresh.pk}/", headers=headers)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from(timeout=10))["type"] == "status"
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the turn runs here, not through the broker
    try:
        await socket.send_json_to({"type": "user_message", "content": "hello", "client_message_id": "c-1"})
        frames = []
        while not any(frame["type"] == "ack" for frame in frames) and len(frames) < 10:
            frames.append(await socket.receive_json_from(timeout=30))
    finally:
        celery_app.conf.task_always_eager = previous
    ack = next(frame for frame in frames if frame["type"] == "ack")
    assert ack["client_message_id"] == "c-1"
    stored = await database_sync_to_async(
        lambda: list(Message.objects.all_tenants().filter(conversation=fresh, role="user").values_list("pk", "content"))
    )()
    assert stored == [(ack["message_id"], "hello")]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_visitor_whose_open_page_outlived_the_prune_writes_into_a_new_conversation(tenant_world: Any) -> None:
    client = Client()
    slug = tenant_world.tenant.slug
    page = await database_sync_to_async(client.get)(f"/c/{slug}/")
    cookie = page.cookies[COOKIE_NAME].value
    pruned = await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).get)()
    headers = [(b"cookie", f"{COOKIE_NAME}={cookie}".encode())]
    socket = WebsocketCommunicator(application, f"/ws/chat/{pruned.pk}/", headers=headers)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from(timeout=10))["type"] == "status"
    # The page stays open past the cutoff; the prune removes its (still empty) conversation.
    await database_sync_to_async(aged)(pruned, 25)
    assert await database_sync_to_async(services.empty_visitor_conversations_prune)() == 1

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        await socket.send_json_to({"type": "user_message", "content": "still there?", "client_message_id": "c-9"})
        frames = []
        while not any(frame["type"] == "message" and frame["role"] == "assistant" for frame in frames):
            frames.append(await socket.receive_json_from(timeout=30))
            assert len(frames) < 10
    finally:
        celery_app.conf.task_always_eager = previous

    fresh = await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).get)()
    assert fresh.pk != pruned.pk and fresh.visitor_id == visitor_id_from_cookie(cookie)
    kinds = [frame["type"] for frame in frames]
    # The page learns where to reconnect before the acknowledgement, and the reply reaches
    # this socket (it joined the new conversation).
    assert kinds.index("conversation") < kinds.index("ack")
    moved = frames[kinds.index("conversation")]
    assert moved == {"type": "conversation", "id": fresh.pk, "socket_path": f"/ws/chat/{fresh.pk}/"}
    stored = await database_sync_to_async(
        lambda: list(Message.objects.all_tenants().filter(conversation=fresh).values_list("role", "content"))
    )()
    assert stored[0] == ("user", "still there?") and [role for role, _ in stored] == ["user", "assistant"]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_pruned_page_goes_on_in_the_visitors_other_open_conversation_counted_once(tenant_world: Any) -> None:
    from morvo.models import ThrottleWindow

    client = Client()
    slug = tenant_world.tenant.slug
    page = await database_sync_to_async(client.get)(f"/c/{slug}/")
    cookie = page.cookies[COOKIE_NAME].value
    visitor_id = visitor_id_from_cookie(cookie)
    pruned = await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).get)()

    def other_tab() -> Conversation:
        conversation = services.conversation_start_visitor(tenant_world.tenant, visitor_id)
        services.message_post(tenant_world.tenant, conversation, content="written in the other tab")
        return conversation

    other = await database_sync_to_async(other_tab)()
    headers = [(b"cookie", f"{COOKIE_NAME}={cookie}".encode())]
    socket = WebsocketCommunicator(application, f"/ws/chat/{pruned.pk}/", headers=headers)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from(timeout=10))["type"] == "status"
    await database_sync_to_async(aged)(pruned, 25)
    assert await database_sync_to_async(services.empty_visitor_conversations_prune)() == 1

    await socket.send_json_to({"type": "user_message", "content": "still there?", "client_message_id": "c-7"})
    frames = []
    while not any(frame["type"] == "ack" for frame in frames):
        frames.append(await socket.receive_json_from(timeout=30))
        assert len(frames) < 10
    await socket.disconnect()

    moved = next(frame for frame in frames if frame["type"] == "conversation")
    assert moved["id"] == other.pk, "no second conversation for the same visitor"
    assert await database_sync_to_async(Conversation.objects.for_tenant(tenant_world.tenant).count)() == 1
    stored = await database_sync_to_async(
        lambda: list(Message.objects.all_tenants().filter(conversation=other, role="user").values_list("content"))
    )()
    assert stored == [("written in the other tab",), ("still there?",)]
    hits = await database_sync_to_async(
        lambda: sum(ThrottleWindow.objects.filter(key=f"chat:visitor:{visitor_id}").values_list("hits", flat=True))
    )()
    assert hits == 1, "the moved message counts once against the visitor's rate"
