"""``/api/v1/inboxes``: create channel inboxes, list, read, remove; secrets masked."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Inbox
from morvo.models import Membership
from tests.conversations.channel_helpers import make_conversation, make_inbox

CHATWOOT = {
    "channel_type": "chatwoot",
    "name": "Chatwoot support",
    "config": {
        "base_url": "https://chat.alpha.example",
        "api_access_token": "cw-access-token-0123456789",
        "account_id": 3,
        "webhook_secret": "whsec",
    },
}


@pytest.fixture(autouse=True)
def english(settings) -> None:
    settings.LANGUAGE_CODE = "en"


def test_create_a_chatwoot_inbox(two_tenants):
    world = two_tenants.a

    response = world.api.post("/api/v1/inboxes", CHATWOOT, format="json")

    assert response.status_code == 201
    inbox = Inbox.objects.for_tenant(world.tenant).get()
    assert response.json() == {
        "id": inbox.pk,
        "name": "Chatwoot support",
        "channel_type": "chatwoot",
        "is_active": True,
        "config": {
            "base_url": "https://chat.alpha.example",
            "api_access_token": "••••6789",
            "account_id": 3,
            "webhook_secret": "••••",
        },
        "webhook_url": f"http://testserver/webhooks/chatwoot/{inbox.secret}/",
        "created_at": timezone.localtime(inbox.created_at).isoformat(),
    }
    assert inbox.config == CHATWOOT["config"]
    assert Inbox.objects.for_tenant(two_tenants.b.tenant).count() == 0


def test_list_and_retrieve_mask_secrets(two_tenants):
    world = two_tenants.a
    inbox = make_inbox(world.tenant, "whatsapp")
    make_inbox(two_tenants.b.tenant, "telegram")

    listed = world.api.get("/api/v1/inboxes").json()
    one = world.api.get(f"/api/v1/inboxes/{inbox.pk}").json()

    assert [row["id"] for row in listed["results"]] == [inbox.pk]
    assert one == listed["results"][0]
    assert one["config"]["access_token"] == "••••oken"
    assert one["config"]["app_secret"] == "••••"
    assert one["config"]["phone_number_id"] == "106540352242922"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**CHATWOOT, "channel_type": "companion"}, {"channel_type"}),
        ({**CHATWOOT, "config": {"base_url": "https://x.example"}}, {"config.api_access_token", "config.account_id"}),
        ({**CHATWOOT, "config": {**CHATWOOT["config"], "base_url": "ftp://x"}}, {"config.base_url"}),
        ({**CHATWOOT, "secret": "mine"}, {"secret"}),
        ({"channel_type": "telegram", "name": "Bot", "config": {"bot_token": "1:x"}}, {"config.secret_token"}),
        (
            {"channel_type": "sms", "name": "SMS", "config": {"account_sid": "AC1", "auth_token": "t"}},
            {"config.from_number"},
        ),
        ({**CHATWOOT, "config": "nope"}, {"config"}),
    ],
)
def test_invalid_inboxes_are_400_and_write_nothing(two_tenants, body, fields):
    response = two_tenants.a.api.post("/api/v1/inboxes", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["status"], error["message"]) == (400, "Invalid input.")
    assert set(error["fields"]) == fields
    assert Inbox.objects.all_tenants().count() == 0


def test_a_duplicate_name_is_400(two_tenants):
    world = two_tenants.a
    assert world.api.post("/api/v1/inboxes", CHATWOOT, format="json").status_code == 201

    again = world.api.post("/api/v1/inboxes", CHATWOOT, format="json")

    assert again.status_code == 400
    assert again.json()["error"]["fields"] == {"name": ["An inbox with this name exists."]}
    assert Inbox.objects.for_tenant(world.tenant).count() == 1


def test_delete_removes_an_unused_inbox_and_deactivates_a_used_one(two_tenants):
    world = two_tenants.a
    unused = make_inbox(world.tenant, "telegram")
    used = make_inbox(world.tenant, "whatsapp")
    make_conversation(world.tenant, used, "966500000001")

    assert world.api.delete(f"/api/v1/inboxes/{unused.pk}").status_code == 204
    assert world.api.delete(f"/api/v1/inboxes/{used.pk}").status_code == 204

    assert list(Inbox.objects.for_tenant(world.tenant).values_list("pk", "is_active")) == [(used.pk, False)]


def test_another_tenants_inbox_is_404(two_tenants):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")

    two_tenants.assert_isolated(f"/api/v1/inboxes/{inbox.pk}")
    response = two_tenants.b.api.delete(f"/api/v1/inboxes/{inbox.pk}")

    assert response.status_code == 404
    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get().is_active is True


def test_anonymous_is_401(two_tenants):
    client = APIClient()

    assert client.get("/api/v1/inboxes").status_code == 401
    assert client.post("/api/v1/inboxes", CHATWOOT, format="json").status_code == 401
    assert Inbox.objects.all_tenants().count() == 0


@pytest.mark.parametrize("role", [Membership.Role.AGENT, Membership.Role.VIEWER])
def test_members_who_do_not_manage_are_403(two_tenants, role):
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    _, _, client = two_tenants.a.member(role)

    listed = client.get("/api/v1/inboxes")
    created = client.post("/api/v1/inboxes", CHATWOOT, format="json")
    deleted = client.delete(f"/api/v1/inboxes/{inbox.pk}")

    assert (listed.status_code, created.status_code, deleted.status_code) == (403, 403, 403)
    assert list(Inbox.objects.for_tenant(two_tenants.a.tenant).values_list("pk", "is_active")) == [(inbox.pk, True)]


def test_config_problems_are_in_arabic_for_an_arabic_caller(two_tenants):
    response = two_tenants.a.api.post(
        "/api/v1/inboxes",
        {"channel_type": "telegram", "name": "بوت", "config": {"bot_token": "1:x"}},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ar",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"config.secret_token": ["هذا الحقل مطلوب."]}
    assert Inbox.objects.all_tenants().count() == 0
