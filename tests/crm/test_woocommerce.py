"""The WooCommerce connector against a fake store on 127.0.0.1 that checks the requests."""

from __future__ import annotations

import base64

import httpx
import pytest

from conversations import services as conversation_services
from conversations.models import Message
from crm import services, tasks
from crm.connectors.sync import store_sync
from crm.connectors.woocommerce import WooCommerceClient, WooCommerceError
from crm.models import Contact, Order, Product, StockAlert, StoreConnection
from tests.crm.fake_woocommerce import FakeWooCommerce, woo_order, woo_product
from tests.factories import ProductFactory, TenantFactory


def connect(tenant, store, **fields):
    return StoreConnection.objects.for_tenant(tenant).create(
        tenant=tenant,
        name="My store",
        base_url=store.base_url,
        consumer_key=fields.pop("consumer_key", "ck_test"),
        consumer_secret=fields.pop("consumer_secret", "cs_test"),
        **fields,
    )


@pytest.mark.django_db
def test_sync_pages_through_products_and_orders_with_signed_requests():
    tenant = TenantFactory()
    with FakeWooCommerce() as store:
        store.products = [woo_product(index, f"SKU-{index}", stock=index % 3) for index in range(1, 231)]
        store.products.append(woo_product(999, "", stock=None, status="draft", stock_status="instock"))
        store.orders = [
            woo_order(
                501, status="processing", email="noura@example.com", items=[("SKU-1", 2, "150.00")], total="300.00"
            ),
            woo_order(
                502,
                status="completed",
                email="NOURA@example.com",
                items=[("SKU-2", 1, "150.00"), ("GONE", 1, "9")],
                total="159.00",
            ),
        ]
        connection = connect(tenant, store)

        result = store_sync(tenant, connection.pk)

    assert result.as_dict() == {
        "products_created": 231,
        "products_updated": 0,
        "restocked": 0,
        "orders_created": 2,
        "orders_updated": 0,
        "skipped": 1,
    }
    paths = [(request["path"], request["query"]["page"], request["query"]["per_page"]) for request in store.requests]
    assert paths == [
        ("/wp-json/wc/v3/products", "1", "100"),
        ("/wp-json/wc/v3/products", "2", "100"),
        ("/wp-json/wc/v3/products", "3", "100"),
        ("/wp-json/wc/v3/orders", "1", "100"),
    ]
    assert all("cs_test" not in str(request["query"]) for request in store.requests)
    assert "modified_after" not in store.requests[-1]["query"]
    assert Product.objects.for_tenant(tenant).count() == 231
    unmanaged = Product.objects.for_tenant(tenant).get(sku="wc-999")
    assert (unmanaged.stock_quantity, unmanaged.status) == (1, "draft")
    assert Product.objects.for_tenant(tenant).get(sku="SKU-5").stock_quantity == 2
    orders = {order.number: order for order in Order.objects.for_tenant(tenant)}
    assert (orders["501"].status, str(orders["501"].total), orders["501"].items.count()) == ("paid", "300.00", 1)
    assert (orders["502"].status, orders["502"].items.count()) == ("delivered", 1)
    customer = Contact.objects.for_tenant(tenant).get()
    assert (customer.name, customer.email, customer.phone, customer.lifecycle_stage) == (
        "Noura Saleh",
        "noura@example.com",
        "+966501234567",
        "customer",
    )
    connection.refresh_from_db()
    assert connection.last_synced_at is not None and connection.last_error == ""


@pytest.mark.django_db
def test_a_second_sync_changes_nothing_and_asks_only_for_newer_orders():
    tenant = TenantFactory()
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=4)]
        store.orders = [
            woo_order(7, status="processing", email="a@example.com", items=[("OUD", 1, "150")], total="150")
        ]
        connection = connect(tenant, store)
        store_sync(tenant, connection.pk)
        store.requests.clear()

        again = store_sync(tenant, connection.pk)

    assert (again.products_created, again.products_updated, again.orders_created) == (0, 0, 0)
    assert "modified_after" in store.requests[-1]["query"]
    assert Order.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db
def test_a_sync_that_brings_stock_back_notifies_the_waiting_customers_once(
    monkeypatch, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, sku="OUD", stock_quantity=0)
    conversation = conversation_services.conversation_start_visitor(tenant, "v-1")
    contact = services.contact_for_conversation(tenant, conversation)
    alert, _ = services.stock_alert_create(tenant, contact=contact, product=product, conversation=conversation)
    ran: list[tuple] = []

    def run_now(args, **options):
        ran.append(args)
        tasks.stock_alert_notify_task(*args)

    monkeypatch.setattr(tasks.stock_alert_notify_task, "apply_async", run_now)
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=6)]
        connection = connect(tenant, store)
        with django_capture_on_commit_callbacks(execute=True):
            result = store_sync(tenant, connection.pk)
        with django_capture_on_commit_callbacks(execute=True):
            store_sync(tenant, connection.pk)

    assert (result.products_updated, result.restocked) == (1, 1)
    assert ran == [(tenant.pk, product.pk)]
    alert.refresh_from_db()
    assert alert.status == "notified"
    assert Message.objects.for_tenant(tenant).filter(metadata__stock_alert_id=alert.pk).count() == 1


@pytest.mark.django_db
def test_a_wrong_secret_is_recorded_and_writes_nothing():
    tenant = TenantFactory()
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=4)]
        connection = connect(tenant, store, consumer_secret="cs_wrong")
        with pytest.raises(WooCommerceError) as error:
            store_sync(tenant, connection.pk)

    assert str(error.value) == "the store refused the consumer key (401)"
    connection.refresh_from_db()
    assert (connection.last_error, connection.last_synced_at) == ("the store refused the consumer key (401)", None)
    assert Product.objects.for_tenant(tenant).count() == 0


@pytest.mark.django_db
def test_the_sync_task_of_another_tenant_cannot_use_a_connection():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=4)]
        connection = connect(tenant_a, store)
        with pytest.raises(StoreConnection.DoesNotExist):
            tasks.store_sync_task(tenant_b.pk, connection.pk)
        assert store.requests == []
        assert tasks.store_sync_task(tenant_a.pk, connection.pk)["products_created"] == 1
    assert Product.objects.for_tenant(tenant_b).count() == 0


@pytest.mark.django_db
def test_beat_fans_out_one_sync_per_active_connection(monkeypatch):
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    with FakeWooCommerce() as store:
        active = connect(tenant_a, store)
        connect(tenant_b, store, is_active=False)
    fanned: list[tuple] = []
    monkeypatch.setattr(tasks.store_sync_task, "apply_async", lambda args, **options: fanned.append((args, options)))
    assert tasks.store_sync_all_task() == 1
    assert fanned == [((tenant_a.pk, active.pk), {"expires": 900})]


def test_https_stores_get_basic_auth_and_no_oauth_parameters():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": 1}], headers={"X-WP-TotalPages": "1"})

    with WooCommerceClient(
        "https://shop.example.com/", "ck_1", "cs_1", transport=httpx.MockTransport(handler)
    ) as client:
        rows = list(client.products())

    assert rows == [{"id": 1}]
    assert seen[0].url.path == "/wp-json/wc/v3/products"
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"ck_1:cs_1").decode()
    assert "oauth_signature" not in str(seen[0].url)


@pytest.mark.django_db
def test_stock_alerts_stay_pending_when_the_store_says_out_of_stock(django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    product = ProductFactory(tenant=tenant, sku="OUD", stock_quantity=0)
    services.stock_alert_create(tenant, contact=services.contact_create(tenant, name="N"), product=product)
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=0, price="180.00")]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            store_sync(tenant, connect(tenant, store).pk)
    assert callbacks == []
    assert str(Product.objects.for_tenant(tenant).get(sku="OUD").price) == "180.00"
    assert StockAlert.objects.for_tenant(tenant).get().status == "pending"


@pytest.mark.django_db
def test_store_sync_command():
    from io import StringIO

    from django.core.management import CommandError, call_command

    tenant = TenantFactory(slug="shop-cmd")
    with pytest.raises(CommandError, match="no active store connection"):
        call_command("store_sync", "shop-cmd")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("store_sync", "nobody")
    with FakeWooCommerce() as store:
        store.products = [woo_product(1, "OUD", stock=2)]
        connect(tenant, store)
        out = StringIO()
        call_command("store_sync", "shop-cmd", stdout=out)
    assert "'products_created': 1" in out.getvalue()
    assert Product.objects.for_tenant(tenant).count() == 1
