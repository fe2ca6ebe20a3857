"""Stock alerts end to end: created once per contact and product, notified exactly once on
their channel when stock returns (every trigger), expired after the configured days."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations import services as conversation_services
from conversations.models import Message
from crm import services, tasks
from crm.models import Contact, Product, StockAlert
from tests.factories import ContactFactory, ProductFactory, TenantFactory


def waiting_customer(tenant, product, visitor: str, *, language: str = "en", name: str = "Noura Saleh"):
    """A web visitor with a conversation and a pending alert on ``product``."""
    conversation = conversation_services.conversation_start_visitor(tenant, visitor)
    contact = services.contact_for_conversation(tenant, conversation)
    services.contact_update(tenant, contact.pk, language=language, name=name)
    alert, created = services.stock_alert_create(
        tenant,
        contact=Contact.objects.for_tenant(tenant).get(pk=contact.pk),
        product=product,
        conversation=conversation,
        message_text="let me know when it's back",
    )
    assert created
    return alert


def alert_messages(tenant):
    return list(
        Message.objects.for_tenant(tenant).filter(metadata__kind="stock_alert").order_by("metadata__stock_alert_id")
    )


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.stock_alert_notify_task, "apply_async", lambda args, **options: calls.append(args))
    return calls


@pytest.mark.django_db
def test_one_pending_alert_per_contact_and_product(settings):
    settings.CRM_STOCK_ALERT_EXPIRY_DAYS = 10
    tenant = TenantFactory()
    contact = ContactFactory(tenant=tenant)
    product = ProductFactory(tenant=tenant, stock_quantity=0)

    alert, created = services.stock_alert_create(
        tenant, contact=contact, product=product, channel_type="whatsapp", message_text="متى يتوفر؟", context={"q": 1}
    )
    again, created_again = services.stock_alert_create(tenant, contact=contact, product=product)

    assert (created, created_again, again.pk) == (True, False, alert.pk)
    assert (alert.status, alert.channel_type, alert.message_text, alert.context) == (
        "pending",
        "whatsapp",
        "متى يتوفر؟",
        {"q": 1},
    )
    assert alert.expires_at - alert.created_at == timedelta(days=10)
    assert StockAlert.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_stock_alert_create_refuses_another_tenants_product():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    product = ProductFactory(tenant=tenant_a, stock_quantity=0)
    with pytest.raises(services.CrmError):
        services.stock_alert_create(tenant_b, contact=ContactFactory(tenant=tenant_b), product=product)
    assert StockAlert.objects.all_tenants().count() == 0


@pytest.mark.django_db
def test_restock_notifies_every_waiting_customer_once_in_their_language():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0, name_ar="عود ملكي", name_en="Royal Oud")
    english = waiting_customer(tenant, product, "v-en", language="en", name="Noura Saleh")
    arabic = waiting_customer(tenant, product, "v-ar", language="ar", name="سارة")
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=5)

    counts = services.stock_alerts_notify(tenant, product.pk)
    again = services.stock_alerts_notify(tenant, product.pk)

    assert counts == {"notified": 2, "expired": 0, "undeliverable": 0, "cancelled": 0, "failed": 0}
    assert again == {"notified": 0, "expired": 0, "undeliverable": 0, "cancelled": 0, "failed": 0}
    messages = alert_messages(tenant)
    assert [(message.conversation_id, message.role) for message in messages] == [
        (english.conversation_id, "assistant"),
        (arabic.conversation_id, "assistant"),
    ]
    assert messages[0].content == ("Good news, Noura! Royal Oud is back in stock (199.00 SAR). Reply here to order it.")
    assert messages[1].content.startswith("أخبار سارة يا سارة! عود ملكي")
    for alert, message in zip([english, arabic], messages, strict=True):
        alert.refresh_from_db()
        assert (alert.status, alert.notification_message_id) == ("notified", message.pk)
        assert alert.notified_at is not None


@pytest.mark.django_db
def test_nothing_is_sent_while_the_product_is_out_of_stock_or_a_draft():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    alert = waiting_customer(tenant, product, "v-1")

    assert services.stock_alerts_notify(tenant, product.pk)["notified"] == 0
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=3, status="draft")
    assert services.stock_alerts_notify(tenant, product.pk)["notified"] == 0

    alert.refresh_from_db()
    assert alert.status == "pending"
    assert alert_messages(tenant) == []


@pytest.mark.django_db
def test_expired_blocked_and_unreachable_alerts_are_not_sent():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    expired = waiting_customer(tenant, product, "v-old")
    StockAlert.objects.for_tenant(tenant).filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    blocked = waiting_customer(tenant, product, "v-blocked")
    services.contact_update(tenant, blocked.contact_id, blocked=True)
    unreachable, _ = services.stock_alert_create(
        tenant, contact=ContactFactory(tenant=tenant), product=product, channel_type="web"
    )
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=1)

    counts = services.stock_alerts_notify(tenant, product.pk)

    assert counts == {"notified": 0, "expired": 1, "undeliverable": 1, "cancelled": 1, "failed": 0}
    statuses = dict(StockAlert.objects.for_tenant(tenant).values_list("pk", "status"))
    assert statuses == {expired.pk: "expired", blocked.pk: "cancelled", unreachable.pk: "undeliverable"}
    assert alert_messages(tenant) == []


@pytest.mark.django_db
def test_an_alert_without_conversation_goes_to_the_contacts_latest_one_on_its_channel():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    conversation = conversation_services.conversation_start_visitor(tenant, "v-1")
    contact = services.contact_for_conversation(tenant, conversation)
    alert, _ = services.stock_alert_create(tenant, contact=contact, product=product, channel_type="web")
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=1)

    assert services.stock_alerts_notify(tenant, product.pk)["notified"] == 1
    alert.refresh_from_db()
    assert alert.conversation_id == conversation.pk
    assert [message.conversation_id for message in alert_messages(tenant)] == [conversation.pk]


@pytest.mark.django_db
def test_a_failing_send_leaves_the_alert_pending_and_the_others_go(monkeypatch):
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    failing = waiting_customer(tenant, product, "v-1")
    fine = waiting_customer(tenant, product, "v-2")
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=1)
    real_send = services._send_outbound

    def send(tenant_, conversation, content, **kwargs):
        if kwargs["metadata"]["stock_alert_id"] == failing.pk:
            raise ConnectionError("provider down")
        return real_send(tenant_, conversation, content, **kwargs)

    def refuse_the_batch(tenant_, items):
        raise ConnectionError("the batch could not be written")

    # The batch is refused, so each alert is sent on its own: one failing leaves the other sent.
    monkeypatch.setattr("conversations.services.messages_send_outbound", refuse_the_batch)
    monkeypatch.setattr(services, "_send_outbound", send)
    counts = services.stock_alerts_notify(tenant, product.pk)

    assert (counts["notified"], counts["failed"]) == (1, 1)
    assert dict(StockAlert.objects.for_tenant(tenant).values_list("pk", "status")) == {
        failing.pk: "pending",
        fine.pk: "notified",
    }
    assert [message.metadata["stock_alert_id"] for message in alert_messages(tenant)] == [fine.pk]


@pytest.mark.django_db
def test_the_api_stock_patch_schedules_the_notification_after_commit(
    two_tenants, enqueued, django_capture_on_commit_callbacks
):
    tenant = two_tenants.a.tenant
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    waiting_customer(tenant, product, "v-1")

    with django_capture_on_commit_callbacks(execute=True):
        response = two_tenants.a.api.patch(f"/api/v1/products/{product.pk}", {"stock_quantity": 4}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        two_tenants.a.api.patch(f"/api/v1/products/{product.pk}", {"stock_quantity": 6}, format="json")

    assert response.status_code == 200
    assert enqueued == [(tenant.pk, product.pk)]  # only when stock came back, not on every change


@pytest.mark.django_db
def test_restocking_a_product_without_alerts_enqueues_nothing(enqueued, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    with django_capture_on_commit_callbacks(execute=True):
        services.product_update(tenant, product.pk, stock_quantity=3)
    assert enqueued == []


@pytest.mark.django_db
def test_the_notify_task_runs_for_its_tenant_only():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    product = ProductFactory(tenant=tenant_a, stock_quantity=0)
    waiting_customer(tenant_a, product, "v-1")
    Product.objects.for_tenant(tenant_a).filter(pk=product.pk).update(stock_quantity=2)

    assert tasks.stock_alert_notify_task(tenant_b.pk, product.pk)["notified"] == 0
    assert StockAlert.objects.for_tenant(tenant_a).get().status == "pending"
    assert tasks.stock_alert_notify_task(tenant_a.pk, product.pk)["notified"] == 1


@pytest.mark.django_db
def test_hourly_check_expires_old_alerts_and_fans_out_per_tenant_and_product(monkeypatch, enqueued):
    tenant_a, tenant_b, quiet = TenantFactory(), TenantFactory(), TenantFactory()
    back_a = ProductFactory(tenant=tenant_a, stock_quantity=0)
    still_out = ProductFactory(tenant=tenant_a, stock_quantity=0)
    back_b = ProductFactory(tenant=tenant_b, stock_quantity=0)
    waiting_customer(tenant_a, back_a, "a-1")
    waiting_customer(tenant_a, still_out, "a-2")
    old = waiting_customer(tenant_b, back_b, "b-1")
    StockAlert.objects.for_tenant(tenant_b).filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    waiting_customer(tenant_b, back_b, "b-2")
    ProductFactory(tenant=quiet)
    for tenant, product in [(tenant_a, back_a), (tenant_b, back_b)]:
        Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=5)
    fanned: list[tuple] = []
    monkeypatch.setattr(
        tasks.stock_alerts_check_tenant_task, "apply_async", lambda args, **options: fanned.append((args, options))
    )

    assert tasks.stock_alerts_check_task() == 2
    assert sorted(args for args, _ in fanned) == sorted([(tenant_a.pk,), (tenant_b.pk,)])
    assert all(options == {"expires": 3600} for _, options in fanned)
    for args, _ in fanned:
        tasks.stock_alerts_check_tenant_task(*args)

    assert sorted(enqueued) == sorted([(tenant_a.pk, back_a.pk), (tenant_b.pk, back_b.pk)])
    assert StockAlert.objects.for_tenant(tenant_b).get(pk=old.pk).status == "expired"


@pytest.mark.django_db
def test_mark_in_stock_and_notify_refuses_a_bad_quantity():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    for quantity in (0, -1, "5", True):
        with pytest.raises(services.CrmError):
            services.product_mark_in_stock_and_notify(tenant, product.pk, quantity)
    assert Product.objects.for_tenant(tenant).get(pk=product.pk).stock_quantity == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_and_two_triggers_racing_over_one_product_notify_each_customer_once(settings):
    """Four notifiers (two workers running the task, the API's stock patch and the hourly
    check) race over 60 waiting customers in small batches: 60 messages, one each."""
    settings.CRM_STOCK_ALERT_BATCH_SIZE = 4
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    alerts = [waiting_customer(tenant, product, f"v-{index}") for index in range(60)]
    Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=100)
    barrier = threading.Barrier(4)
    totals: list[int] = []
    errors: list[BaseException] = []

    def notifier() -> None:
        try:
            barrier.wait()
            totals.append(services.stock_alerts_notify(tenant, product.pk)["notified"])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=notifier) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(totals) == 60
    messages = alert_messages(tenant)
    assert len(messages) == 60
    assert sorted(message.metadata["stock_alert_id"] for message in messages) == sorted(alert.pk for alert in alerts)
    assert StockAlert.objects.for_tenant(tenant).filter(status="notified").count() == 60


@pytest.mark.django_db
def test_an_alert_takes_its_conversations_channel_and_refuses_an_unknown_one():
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, stock_quantity=0)
    conversation = conversation_services.conversation_start_visitor(tenant, "v-1")
    contact = services.contact_for_conversation(tenant, conversation)

    alert, _ = services.stock_alert_create(
        tenant, contact=contact, product=product, conversation=conversation, channel_type="whatsapp"
    )
    with pytest.raises(services.CrmError) as error:
        services.stock_alert_create(tenant, contact=ContactFactory(tenant=tenant), product=product, channel_type="fax")

    assert alert.channel_type == "web"
    assert error.value.code == "invalid_channel"
    assert StockAlert.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_a_product_with_many_waiting_gets_parallel_jobs(settings, enqueued, django_capture_on_commit_callbacks):
    settings.CRM_STOCK_ALERT_BATCH_SIZE = 2
    settings.CRM_STOCK_ALERT_PARALLEL_JOBS = 3
    tenant = TenantFactory()
    many = ProductFactory(tenant=tenant, stock_quantity=0)
    few = ProductFactory(tenant=tenant, stock_quantity=0)
    for _ in range(7):
        services.stock_alert_create(tenant, contact=ContactFactory(tenant=tenant), product=many)
    services.stock_alert_create(tenant, contact=ContactFactory(tenant=tenant), product=few)

    with django_capture_on_commit_callbacks(execute=True):
        services.product_update(tenant, many.pk, stock_quantity=1)
        services.product_update(tenant, few.pk, stock_quantity=1)

    assert enqueued == [(tenant.pk, many.pk)] * 3 + [(tenant.pk, few.pk)]


@pytest.mark.django_db
def test_a_batch_of_alerts_is_notified_in_a_few_statements_whatever_its_size():
    """The notifications of a batch are written together: 10 or 40 customers, the same
    number of statements (about twelve; one by one it was a dozen per customer)."""
    from tests.conversations.channel_helpers import make_conversation, make_inbox

    def statements(count: int) -> int:
        tenant = TenantFactory()
        product = ProductFactory(tenant=tenant, stock_quantity=0)
        inbox = make_inbox(tenant, "telegram")
        for n in range(count):
            contact = ContactFactory(tenant=tenant, language="ar" if n % 2 else "en")
            conversation = make_conversation(tenant, inbox, f"77{n}", contact=contact)
            services.stock_alert_create(tenant, contact=contact, product=product, conversation=conversation)
        Product.objects.for_tenant(tenant).filter(pk=product.pk).update(stock_quantity=3)
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            counts = services.stock_alerts_notify(tenant, product.pk)
        assert counts["notified"] == count
        assert len(alert_messages(tenant)) == count
        return len(queries)

    small, large = statements(10), statements(40)
    assert small == large
    assert large <= 15
