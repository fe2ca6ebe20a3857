"""An inbox's provider secrets are encrypted in the database, read back in plain text, and
survive key rotation; a key that opens nothing fails closed and loses nothing."""

from __future__ import annotations

import importlib
import io
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.db import connection
from django.test import Client

from conversations.models import Inbox
from morvo import crypto
from tests.conversations.channel_helpers import TELEGRAM_SECRET, make_inbox

pytestmark = pytest.mark.django_db


def stored_config(inbox: Inbox) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM conversations_inbox WHERE id = %s", [inbox.pk])
        raw = cursor.fetchone()[0]
    import json

    return raw if isinstance(raw, dict) else json.loads(raw)


def test_secrets_are_encrypted_at_rest_and_read_back_in_plain_text(two_tenants: Any) -> None:
    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")

    raw = stored_config(inbox)
    assert raw["access_token"].startswith("enc:v1:") and raw["app_secret"].startswith("enc:v1:")
    assert "EAAG-fake-access-token" not in str(raw)
    assert raw["phone_number_id"] == "106540352242922"  # not a secret: as it was, still queryable
    fresh = Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk)
    assert fresh.config["access_token"] == "EAAG-fake-access-token"
    # An update() is encrypted too, and saving what was read does not encrypt twice.
    Inbox.objects.for_tenant(two_tenants.a.tenant).filter(pk=inbox.pk).update(
        config={**fresh.config, "access_token": "rotated-token"}
    )
    fresh = Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk)
    fresh.save()
    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config["access_token"] == "rotated-token"
    assert stored_config(inbox)["access_token"].startswith("enc:v1:")


def test_a_new_key_first_and_the_old_one_after_reads_both(two_tenants: Any, settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    inbox = make_inbox(two_tenants.a.tenant, "telegram")
    written_with_old = stored_config(inbox)["bot_token"]

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    fresh = Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk)
    assert fresh.config["bot_token"] == "123456:fake-bot-token"
    fresh.config["bot_token"] = "654321:new-bot-token"
    fresh.save()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config["bot_token"] == "654321:new-bot-token"
    assert stored_config(inbox)["bot_token"] != written_with_old


def test_the_secret_key_rotated_the_django_way_still_opens_secrets(two_tenants: Any, settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "the-old-secret-key-" + "x" * 40
    inbox = make_inbox(two_tenants.a.tenant, "sms")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-" + "y" * 40

    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config["auth_token"] == (
        "fake-twilio-auth-token"
    )


def test_a_key_that_opens_nothing_fails_closed_and_keeps_the_ciphertext(two_tenants: Any, settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    inbox = make_inbox(two_tenants.a.tenant, "telegram")
    ciphertext = stored_config(inbox)["secret_token"]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was lost

    fresh = Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk)
    assert fresh.config["secret_token"] == ciphertext  # not opened, not emptied
    from conversations import webhooks

    webhooks.inbox_cache_clear()
    response = Client().post(
        f"/webhooks/telegram/{inbox.secret}/",
        b'{"update_id": 1}',
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=TELEGRAM_SECRET,
    )
    assert response.status_code == 403  # the real token no longer matches anything: refused
    fresh.save()
    assert stored_config(inbox)["secret_token"] == ciphertext  # saving lost nothing


def test_the_migration_encrypts_configs_written_before_it(two_tenants: Any) -> None:
    import json

    inbox = make_inbox(two_tenants.a.tenant, "chatwoot")
    plain = {**Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE conversations_inbox SET config = %s::jsonb WHERE id = %s", [json.dumps(plain), inbox.pk])
    assert stored_config(inbox)["api_access_token"] == "fake-chatwoot-api-token"

    migration = importlib.import_module("conversations.migrations.0004_inbox_config_secrets_encrypted")
    step = migration.Migration.operations[-1]
    step.code(apps, SimpleNamespace(connection=connection))

    assert crypto.is_encrypted(stored_config(inbox)["api_access_token"])
    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config == plain
    # Reversed, the configs are written back in plain text.
    step.reverse_code(apps, SimpleNamespace(connection=connection))
    assert stored_config(inbox) == plain


def test_the_ad_platform_token_is_encrypted_at_rest_and_its_migration_goes_both_ways(two_tenants: Any) -> None:
    from campaigns.models import AutopilotSettings

    tenant = two_tenants.a.tenant
    row = AutopilotSettings.objects.for_tenant(tenant).create(tenant=tenant, impact_auth_token="impact-secret-token")

    def stored() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT impact_auth_token FROM campaigns_autopilotsettings WHERE id = %s", [row.pk])
            return str(cursor.fetchone()[0])

    assert crypto.is_encrypted(stored()) and "impact-secret-token" not in stored()
    assert AutopilotSettings.objects.for_tenant(tenant).get(pk=row.pk).impact_auth_token == "impact-secret-token"

    step = importlib.import_module("campaigns.migrations.0002_impact_auth_token_encrypted").Migration.operations[-1]
    step.reverse_code(apps, SimpleNamespace(connection=connection))
    assert stored() == "impact-secret-token"
    step.code(apps, SimpleNamespace(connection=connection))
    assert crypto.is_encrypted(stored())
    assert AutopilotSettings.objects.for_tenant(tenant).get(pk=row.pk).impact_auth_token == "impact-secret-token"


def test_a_store_connections_secret_is_encrypted_and_never_sent_back_by_the_admin(two_tenants: Any) -> None:
    from crm.models import StoreConnection

    web = two_tenants.a.web
    data = {
        "name": "Shop",
        "kind": "woocommerce",
        "base_url": "https://shop.example.com",
        "consumer_key": "ck_0123456789",
        "consumer_secret": "cs_the_stores_secret_0123456789",
        "is_active": "on",
    }
    assert web.post("/admin/crm/storeconnection/add/", data).status_code == 302
    store = StoreConnection.objects.for_tenant(two_tenants.a.tenant).get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT consumer_secret FROM crm_storeconnection WHERE id = %s", [store.pk])
        stored = cursor.fetchone()[0]
    assert crypto.is_encrypted(stored) and "cs_the_stores_secret" not in stored
    assert store.consumer_secret == "cs_the_stores_secret_0123456789"

    page = web.get(f"/admin/crm/storeconnection/{store.pk}/change/").content.decode()
    assert "cs_the_stores_secret" not in page
    # Left empty, the stored secret stays; typed, it is replaced.
    change = f"/admin/crm/storeconnection/{store.pk}/change/"
    assert web.post(change, {**data, "consumer_secret": "", "name": "Shop 2"}).status_code == 302
    store.refresh_from_db()
    assert (store.name, store.consumer_secret) == ("Shop 2", "cs_the_stores_secret_0123456789")
    assert web.post(change, {**data, "consumer_secret": "cs_new"}).status_code == 302
    store.refresh_from_db()
    assert store.consumer_secret == "cs_new"
    # A new connection needs one.
    refused = web.post("/admin/crm/storeconnection/add/", {**data, "name": "Other", "consumer_secret": ""})
    assert refused.status_code == 200
    assert StoreConnection.objects.for_tenant(two_tenants.a.tenant).count() == 1
    # Another tenant's connection is a 404 in the admin.
    assert two_tenants.b.web.get(change).status_code == 404


def test_setting_keys_for_the_first_time_keeps_old_secrets_and_the_command_moves_them(
    two_tenants: Any, settings: Any
) -> None:
    from django.core.management import call_command

    from crm.models import StoreConnection

    settings.FIELD_ENCRYPTION_KEYS = []  # the default: a key derived from SECRET_KEY
    inbox = make_inbox(two_tenants.a.tenant, "telegram")
    store = StoreConnection.objects.for_tenant(two_tenants.a.tenant).create(
        tenant=two_tenants.a.tenant,
        name="Shop",
        kind="woocommerce",
        base_url="https://shop.example.com",
        consumer_key="ck_1",
        consumer_secret="cs_secret",
    )
    derived_ciphertext = stored_config(inbox)["bot_token"]

    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert (
        Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config["bot_token"] == "123456:fake-bot-token"
    )

    out = io.StringIO()
    call_command("secrets_reencrypt", stdout=out)
    assert "conversations.Inbox: 1 rows written again" in out.getvalue()
    assert "crm.StoreConnection: 1 rows written again" in out.getvalue()
    assert stored_config(inbox)["bot_token"] != derived_ciphertext
    # Written with the new key: readable by it alone, not by the derived key.
    assert Fernet(new.encode()).decrypt(stored_config(inbox)["bot_token"][len(crypto.PREFIX) :].encode()) == (
        b"123456:fake-bot-token"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT consumer_secret FROM crm_storeconnection WHERE id = %s", [store.pk])
        stored_secret = cursor.fetchone()[0]
    assert Fernet(new.encode()).decrypt(stored_secret[len(crypto.PREFIX) :].encode()) == b"cs_secret"


def test_the_command_keeps_what_no_key_opens_and_says_so(two_tenants: Any, settings: Any) -> None:
    from django.core.management import call_command

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    inbox = make_inbox(two_tenants.a.tenant, "telegram")
    ciphertext = stored_config(inbox)["secret_token"]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was lost

    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("secrets_reencrypt", stdout=io.StringIO(), stderr=err)

    assert exit_info.value.code == 1
    assert "conversations.Inbox: 2 values no key opens" in err.getvalue()  # bot_token and secret_token
    assert stored_config(inbox)["secret_token"] == ciphertext


def test_a_value_encrypted_under_a_key_no_longer_listed_as_secret_is_read_in_plain_text(two_tenants: Any) -> None:
    import json

    inbox = make_inbox(two_tenants.a.tenant, "whatsapp")
    raw = stored_config(inbox)
    raw["retired_secret"] = crypto.encrypt("still-mine")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE conversations_inbox SET config = %s::jsonb WHERE id = %s", [json.dumps(raw), inbox.pk])

    assert Inbox.objects.for_tenant(two_tenants.a.tenant).get(pk=inbox.pk).config["retired_secret"] == "still-mine"
