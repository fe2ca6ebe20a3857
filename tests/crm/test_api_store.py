"""The store endpoints: products, orders, product-stats, sentiment-mentions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from tests.factories import (
    ContactFactory,
    OrderFactory,
    OrderItemFactory,
    ProductDailyStatFactory,
    ProductFactory,
    SentimentMentionFactory,
)

RIYADH = ZoneInfo("Asia/Riyadh")
NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
NOT_AUTHENTICATED = {
    "error": {"status": 401, "code": "not_authenticated", "message": "Authentication credentials were not provided."}
}
ROLE_CANNOT_CHANGE = {
    "error": {"status": 403, "code": "permission_denied", "message": "Your role in this tenant cannot change this."}
}
CANNOT_BE_WRITTEN = ["This field cannot be written."]


@pytest.fixture(autouse=True)
def english_messages(settings):
    """Messages are asserted in English; the project's default language is Arabic, so the
    language a request falls back to (no Accept-Language header) is English here."""
    settings.LANGUAGE_CODE = "en"


def iso(moment: datetime) -> str:
    return timezone.localtime(moment).isoformat()


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def invalid(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"error": {"status": 400, "code": "invalid", "message": "Invalid input.", "fields": fields}}


def product_body(product: Product) -> dict[str, Any]:
    product = Product.objects.for_tenant(product.tenant).get(pk=product.pk)
    return {
        "id": product.pk,
        "sku": product.sku,
        "name_ar": product.name_ar,
        "name_en": product.name_en,
        "description": product.description,
        "category": product.category,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "stock_quantity": product.stock_quantity,
        "in_stock": product.stock_quantity > 0,
        "image_url": product.image_url,
        "status": product.status,
        "created_at": iso(product.created_at),
        "updated_at": iso(product.updated_at),
    }


def stored(product: Product) -> tuple[int, Decimal, str, str, datetime]:
    """What a PATCH could change, read fresh (``updated_at`` shows that nothing was saved)."""
    fresh = Product.objects.all_tenants().get(pk=product.pk)
    return fresh.stock_quantity, fresh.price, fresh.status, fresh.name_ar, fresh.updated_at


@dataclass
class Store:
    oud: Product
    musk: Product
    burner: Product
    other_oud: Product
    other_soap: Product
    customer: Contact
    paid_order: Order
    pending_order: Order
    other_order: Order
    stats: list[ProductDailyStat]
    other_stat: ProductDailyStat
    praise: SentimentMention
    complaint: SentimentMention
    neutral: SentimentMention
    other_complaint: SentimentMention


@pytest.fixture
def store(two_tenants) -> Store:
    a, b = two_tenants.a.tenant, two_tenants.b.tenant
    oud = ProductFactory(
        tenant=a,
        sku="A-OUD",
        name_ar="عطر العود الملكي",
        name_en="Royal Oud",
        category="perfume",
        price=Decimal("350.00"),
        stock_quantity=5,
    )
    musk = ProductFactory(
        tenant=a,
        sku="A-MUSK",
        name_ar="مسك الطهارة",
        name_en="White Musk",
        category="perfume",
        price=Decimal("90.00"),
        stock_quantity=0,
    )
    burner = ProductFactory(
        tenant=a,
        sku="A-BURN",
        name_ar="مبخرة نحاسية",
        name_en="Copper Incense Burner",
        category="accessories",
        price=Decimal("120.00"),
        stock_quantity=12,
    )
    # Tenant B sells look-alikes, so every filter and search has something to leak.
    other_oud = ProductFactory(
        tenant=b,
        sku="B-OUD",
        name_ar="عطر العود",
        name_en="Royal Oud Deluxe",
        category="perfume",
        price=Decimal("100.00"),
        stock_quantity=3,
    )
    other_soap = ProductFactory(
        tenant=b,
        sku="B-SOAP",
        name_ar="صابون مسك",
        name_en="Musk Soap",
        category="accessories",
        price=Decimal("15.00"),
        stock_quantity=0,
    )
    customer = ContactFactory(tenant=a, name="نورة", email="noura@example.com")
    paid_order = OrderFactory(
        tenant=a,
        number="A-1001",
        customer=customer,
        customer_name="نورة",
        total=Decimal("790.00"),
        status=Order.Status.PAID,
        payment_method="mada",
        created_at=datetime(2026, 1, 10, 12, 0, tzinfo=RIYADH),
    )
    OrderItemFactory(order=paid_order, product=oud, quantity=2, unit_price=Decimal("350.00"))
    OrderItemFactory(order=paid_order, product=musk, quantity=1, unit_price=Decimal("90.00"))
    pending_order = OrderFactory(
        tenant=a,
        number="A-1002",
        customer_name="Guest",
        total=Decimal("120.00"),
        status=Order.Status.PENDING,
        created_at=datetime(2026, 2, 1, 9, 30, tzinfo=RIYADH),
    )
    OrderItemFactory(order=pending_order, product=burner, quantity=1, unit_price=Decimal("120.00"))
    other_order = OrderFactory(
        tenant=b,
        number="B-1",
        total=Decimal("100.00"),
        status=Order.Status.PAID,
        created_at=datetime(2026, 1, 20, tzinfo=RIYADH),
    )
    OrderItemFactory(order=other_order, product=other_oud, quantity=1, unit_price=Decimal("100.00"))
    stats = [
        ProductDailyStatFactory(product=oud, date=date(2026, 1, 1), views=40, units_sold=2, revenue=Decimal("700.00")),
        ProductDailyStatFactory(product=oud, date=date(2026, 1, 2), views=55, units_sold=1, revenue=Decimal("350.00")),
        ProductDailyStatFactory(product=burner, date=date(2026, 1, 3), views=9, units_sold=0, revenue=Decimal("0")),
    ]
    other_stat = ProductDailyStatFactory(product=other_oud, date=date(2026, 1, 2))
    praise = SentimentMentionFactory(
        tenant=a,
        label="positive",
        score=Decimal("0.900"),
        text="العود رائع",
        product=oud,
        created_at=datetime(2026, 1, 5, tzinfo=RIYADH),
    )
    complaint = SentimentMentionFactory(
        tenant=a,
        label="negative",
        score=Decimal("-0.700"),
        platform="instagram",
        text="المسك نفد بسرعة",
        product=musk,
        created_at=datetime(2026, 1, 6, tzinfo=RIYADH),
    )
    neutral = SentimentMentionFactory(
        tenant=a,
        label="neutral",
        score=Decimal("0.000"),
        text="متى يفتح الفرع؟",
        created_at=datetime(2026, 1, 7, tzinfo=RIYADH),
    )
    other_complaint = SentimentMentionFactory(
        tenant=b,
        label="negative",
        score=Decimal("-0.500"),
        text="bad",
        created_at=datetime(2026, 1, 8, tzinfo=RIYADH),
    )
    return Store(
        oud,
        musk,
        burner,
        other_oud,
        other_soap,
        customer,
        paid_order,
        pending_order,
        other_order,
        stats,
        other_stat,
        praise,
        complaint,
        neutral,
        other_complaint,
    )


ENDPOINTS = ["products", "orders", "product-stats", "sentiment-mentions"]


# --- lists are the token tenant's only ---------------------------------------------------------


def test_product_list_is_the_token_tenants_only_with_exact_bodies(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/products")

    assert response.status_code == 200
    assert response.json() == {
        "count": 3,
        "next": None,
        "previous": None,
        # ordered by English name, then id
        "results": [product_body(store.burner), product_body(store.oud), product_body(store.musk)],
    }
    assert ids(two_tenants.b.api.get("/api/v1/products")) == [store.other_soap.pk, store.other_oud.pk]


def test_order_list_is_the_token_tenants_only_newest_first(two_tenants, store):
    assert ids(two_tenants.a.api.get("/api/v1/orders")) == [store.pending_order.pk, store.paid_order.pk]
    assert ids(two_tenants.b.api.get("/api/v1/orders")) == [store.other_order.pk]


def test_product_stat_list_is_the_token_tenants_only(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/product-stats")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert response.json()["results"] == [
        {
            "id": store.stats[2].pk,
            "product": store.burner.pk,
            "date": "2026-01-03",
            "views": 9,
            "units_sold": 0,
            "revenue": "0.00",
        },
        {
            "id": store.stats[1].pk,
            "product": store.oud.pk,
            "date": "2026-01-02",
            "views": 55,
            "units_sold": 1,
            "revenue": "350.00",
        },
        {
            "id": store.stats[0].pk,
            "product": store.oud.pk,
            "date": "2026-01-01",
            "views": 40,
            "units_sold": 2,
            "revenue": "700.00",
        },
    ]
    assert ids(two_tenants.b.api.get("/api/v1/product-stats")) == [store.other_stat.pk]


def test_sentiment_mention_list_is_the_token_tenants_only(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/sentiment-mentions")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert response.json()["results"][1] == {
        "id": store.complaint.pk,
        "source": "twitter",
        "platform": "instagram",
        "text": "المسك نفد بسرعة",
        "score": "-0.700",
        "label": "negative",
        "product": store.musk.pk,
        "created_at": "2026-01-06T00:00:00+03:00",
    }
    assert ids(response) == [store.neutral.pk, store.complaint.pk, store.praise.pk]
    assert ids(two_tenants.b.api.get("/api/v1/sentiment-mentions")) == [store.other_complaint.pk]


# --- retrieve, and another tenant's object is a 404 ----------------------------------------------


def test_product_retrieve(two_tenants, store):
    response = two_tenants.a.api.get(f"/api/v1/products/{store.oud.pk}")

    assert response.status_code == 200
    assert response.json() == product_body(store.oud)


def test_order_retrieve_includes_items_with_sku_and_names(two_tenants, store):
    items = list(OrderItem.objects.for_tenant(two_tenants.a.tenant).filter(order=store.paid_order).order_by("id"))

    response = two_tenants.a.api.get(f"/api/v1/orders/{store.paid_order.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": store.paid_order.pk,
        "number": "A-1001",
        "customer": store.customer.pk,
        "customer_name": "نورة",
        "customer_email": "noura@example.com",
        "total": "790.00",
        "currency": "SAR",
        "status": "paid",
        "payment_method": "mada",
        "created_at": "2026-01-10T12:00:00+03:00",
        "items": [
            {
                "id": items[0].pk,
                "product": store.oud.pk,
                "sku": "A-OUD",
                "name_ar": "عطر العود الملكي",
                "name_en": "Royal Oud",
                "quantity": 2,
                "unit_price": "350.00",
            },
            {
                "id": items[1].pk,
                "product": store.musk.pk,
                "sku": "A-MUSK",
                "name_ar": "مسك الطهارة",
                "name_en": "White Musk",
                "quantity": 1,
                "unit_price": "90.00",
            },
        ],
    }


def test_order_without_customer_has_empty_customer_fields(two_tenants, store):
    response = two_tenants.a.api.get(f"/api/v1/orders/{store.pending_order.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["customer"], body["customer_name"]) == (None, "Guest")
    assert body["customer_email"] == ""
    assert [item["sku"] for item in body["items"]] == ["A-BURN"]


def test_order_list_includes_items_of_every_order(two_tenants, store):
    results = two_tenants.a.api.get("/api/v1/orders").json()["results"]

    assert [[item["sku"] for item in order["items"]] for order in results] == [["A-BURN"], ["A-OUD", "A-MUSK"]]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_object_is_404_in_the_error_format(two_tenants, store, endpoint):
    response = two_tenants.a.api.get(f"/api/v1/{endpoint}/987654321")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_non_numeric_id_is_404(two_tenants, store, endpoint):
    response = two_tenants.a.api.get(f"/api/v1/{endpoint}/abc")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_another_tenants_product_is_404(two_tenants, store):
    two_tenants.assert_isolated(f"/api/v1/products/{store.oud.pk}")


def test_another_tenants_order_is_404(two_tenants, store):
    two_tenants.assert_isolated(f"/api/v1/orders/{store.paid_order.pk}")


def test_another_tenants_product_stat_is_404(two_tenants, store):
    two_tenants.assert_isolated(f"/api/v1/product-stats/{store.stats[0].pk}")


def test_another_tenants_sentiment_mention_is_404(two_tenants, store):
    two_tenants.assert_isolated(f"/api/v1/sentiment-mentions/{store.praise.pk}")


def test_another_tenants_product_patch_is_404_and_changes_nothing(two_tenants, store):
    two_tenants.assert_isolated(f"/api/v1/products/{store.oud.pk}", method="patch", data={"stock_quantity": 42})

    # A's own PATCH (made by assert_isolated) is the only change.
    assert stored(store.oud)[0] == 42


def test_another_tenants_product_patch_with_invalid_data_is_still_404(two_tenants, store):
    """The object lookup comes before validation: B cannot probe A's ids through 400s."""
    before = stored(store.oud)

    response = two_tenants.b.api.patch(f"/api/v1/products/{store.oud.pk}", {"stock_quantity": -1}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert stored(store.oud) == before


# --- anonymous and methods --------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_is_401_on_list_and_detail(two_tenants, store, endpoint):
    detail_ids = {
        "products": store.oud.pk,
        "orders": store.paid_order.pk,
        "product-stats": store.stats[0].pk,
        "sentiment-mentions": store.praise.pk,
    }
    client = APIClient()

    for path in (f"/api/v1/{endpoint}", f"/api/v1/{endpoint}/{detail_ids[endpoint]}"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Token"
        assert response.json() == NOT_AUTHENTICATED


def test_anonymous_product_patch_is_401_and_changes_nothing(two_tenants, store):
    before = stored(store.oud)

    response = APIClient().patch(f"/api/v1/products/{store.oud.pk}", {"stock_quantity": 1}, format="json")

    assert response.status_code == 401
    assert stored(store.oud) == before


def test_product_post_is_405_and_creates_nothing(two_tenants, store):
    data = {"sku": "NEW", "name_ar": "جديد", "price": "1.00"}

    response = two_tenants.a.api.post("/api/v1/products", data, format="json")

    assert response.status_code == 405
    assert response.json() == {
        "error": {"status": 405, "code": "method_not_allowed", "message": 'Method "POST" not allowed.'}
    }
    assert Product.objects.for_tenant(two_tenants.a.tenant).count() == 3


@pytest.mark.parametrize("method", ["delete", "put"])
def test_product_delete_and_put_are_405_and_change_nothing(two_tenants, store, method):
    before = stored(store.oud)

    response = getattr(two_tenants.a.api, method)(
        f"/api/v1/products/{store.oud.pk}", {"stock_quantity": 1}, format="json"
    )

    assert response.status_code == 405
    assert response.json() == {
        "error": {"status": 405, "code": "method_not_allowed", "message": f'Method "{method.upper()}" not allowed.'}
    }
    assert stored(store.oud) == before


@pytest.mark.parametrize("endpoint", ["orders", "product-stats", "sentiment-mentions"])
def test_read_only_endpoints_refuse_writes(two_tenants, store, endpoint):
    counts = (
        Order.objects.all_tenants().count(),
        ProductDailyStat.objects.all_tenants().count(),
        SentimentMention.objects.all_tenants().count(),
    )

    assert two_tenants.a.api.post(f"/api/v1/{endpoint}", {}, format="json").status_code == 405
    first_id = two_tenants.a.api.get(f"/api/v1/{endpoint}").json()["results"][0]["id"]
    assert two_tenants.a.api.patch(f"/api/v1/{endpoint}/{first_id}", {}, format="json").status_code == 405
    assert two_tenants.a.api.delete(f"/api/v1/{endpoint}/{first_id}").status_code == 405

    assert (
        Order.objects.all_tenants().count(),
        ProductDailyStat.objects.all_tenants().count(),
        SentimentMention.objects.all_tenants().count(),
    ) == counts


# --- PATCH /products/{id} ---------------------------------------------------------------------


def test_owner_patches_stock_and_it_is_stored(two_tenants, store):
    response = two_tenants.a.api.patch(f"/api/v1/products/{store.oud.pk}", {"stock_quantity": 7}, format="json")

    assert response.status_code == 200
    assert response.json() == product_body(store.oud)
    assert (response.json()["stock_quantity"], response.json()["in_stock"]) == (7, True)
    assert stored(store.oud)[:4] == (7, Decimal("350.00"), "active", "عطر العود الملكي")
    assert stored(store.other_oud)[0] == 3


def test_patching_stock_to_zero_makes_the_product_out_of_stock(two_tenants, store):
    response = two_tenants.a.api.patch(f"/api/v1/products/{store.oud.pk}/", {"stock_quantity": 0}, format="json")

    assert response.status_code == 200
    assert (response.json()["stock_quantity"], response.json()["in_stock"]) == (0, False)
    assert stored(store.oud)[0] == 0


def test_owner_patches_price_and_status(two_tenants, store):
    response = two_tenants.a.api.patch(
        f"/api/v1/products/{store.musk.pk}", {"price": "79.50", "status": "archived"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["price"], response.json()["status"]) == ("79.50", "archived")
    assert stored(store.musk)[:3] == (0, Decimal("79.50"), "archived")


def test_admin_may_patch_stock(two_tenants, store):
    _, _, admin = two_tenants.a.member("admin")

    response = admin.patch(f"/api/v1/products/{store.burner.pk}", {"stock_quantity": 30}, format="json")

    assert response.status_code == 200
    assert stored(store.burner)[0] == 30


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_viewer_and_agent_cannot_patch_stock(two_tenants, store, role):
    _, _, client = two_tenants.a.member(role)
    before = stored(store.oud)

    response = client.patch(f"/api/v1/products/{store.oud.pk}", {"stock_quantity": 99}, format="json")

    assert response.status_code == 403
    assert response.json() == ROLE_CANNOT_CHANGE
    assert stored(store.oud) == before
    assert client.get(f"/api/v1/products/{store.oud.pk}").status_code == 200  # reading is fine


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"stock_quantity": -1}, {"stock_quantity": ["Ensure this value is greater than or equal to 0."]}),
        ({"stock_quantity": "abc"}, {"stock_quantity": ["A valid integer is required."]}),
        ({"stock_quantity": 2.5}, {"stock_quantity": ["A valid integer is required."]}),
        ({"stock_quantity": None}, {"stock_quantity": ["This field may not be null."]}),
        (
            {"stock_quantity": 10_000_001},
            {"stock_quantity": ["Ensure this value is less than or equal to 10000000."]},
        ),
        ({"price": "-1.00"}, {"price": ["Ensure this value is greater than or equal to 0."]}),
        ({"price": "cheap"}, {"price": ["A valid number is required."]}),
        ({"status": "deleted"}, {"status": ['"deleted" is not a valid choice.']}),
        # one bad field spoils the whole request: the valid stock is not applied either
        ({"stock_quantity": 8, "price": "-5"}, {"price": ["Ensure this value is greater than or equal to 0."]}),
    ],
)
def test_invalid_product_patch_is_400_and_changes_nothing(two_tenants, store, data, fields):
    before = stored(store.oud)

    response = two_tenants.a.api.patch(f"/api/v1/products/{store.oud.pk}", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert stored(store.oud) == before


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        ({"secret": 1}, ["secret"]),
        ({"stock_quantity": 8, "warehouse": "north"}, ["warehouse"]),
        ({"name_ar": "اسم جديد"}, ["name_ar"]),
        ({"sku": "HIJACK", "in_stock": False}, ["in_stock", "sku"]),
        ({"tenant": 2}, ["tenant"]),
    ],
)
def test_unknown_or_read_only_product_fields_are_400_and_change_nothing(two_tenants, store, data, refused):
    before = stored(store.oud)

    response = two_tenants.a.api.patch(f"/api/v1/products/{store.oud.pk}", data, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({name: CANNOT_BE_WRITTEN for name in refused})
    assert stored(store.oud) == before
    assert Product.objects.all_tenants().get(pk=store.oud.pk).tenant_id == two_tenants.a.tenant.pk


# --- pagination -------------------------------------------------------------------------------


def test_page_size_two_gives_two_results_count_and_next(two_tenants, store):
    first = two_tenants.a.api.get("/api/v1/products?page_size=2")
    second = two_tenants.a.api.get("/api/v1/products?page_size=2&page=2")

    assert first.status_code == 200
    assert first.json()["count"] == 3
    assert first.json()["next"] == "http://testserver/api/v1/products?page=2&page_size=2"
    assert first.json()["previous"] is None
    assert ids(first) == [store.burner.pk, store.oud.pk]
    assert second.json()["count"] == 3
    assert second.json()["next"] is None
    assert second.json()["previous"] == "http://testserver/api/v1/products?page_size=2"
    assert ids(second) == [store.musk.pk]


def test_page_size_is_capped_at_100(two_tenants, store):
    Product.objects.bulk_create(
        [
            Product(
                tenant=two_tenants.a.tenant,
                sku=f"BULK-{n:03d}",
                name_ar=f"منتج {n}",
                name_en=f"Bulk {n:03d}",
                price=Decimal("10.00"),
                stock_quantity=n,
            )
            for n in range(120)
        ]
    )

    response = two_tenants.a.api.get("/api/v1/products?page_size=500")

    assert response.status_code == 200
    assert response.json()["count"] == 123
    assert len(response.json()["results"]) == 100
    assert response.json()["next"] == "http://testserver/api/v1/products?page=2&page_size=500"
    assert len(two_tenants.a.api.get("/api/v1/products?page_size=500&page=2").json()["results"]) == 23
    assert len(two_tenants.a.api.get("/api/v1/products").json()["results"]) == 25  # the default page
    assert two_tenants.b.api.get("/api/v1/products?page_size=500").json()["count"] == 2


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_bad_page_is_404_in_the_error_format(two_tenants, store, page):
    response = two_tenants.a.api.get(f"/api/v1/products?page={page}")

    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "code": "not_found", "message": "Invalid page."}}


# --- filters, search, ordering -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("in_stock=true", ["burner", "oud"]),
        ("in_stock=false", ["musk"]),
        ("category=perfume", ["oud", "musk"]),
        ("category=accessories", ["burner"]),
        ("category=toys", []),
        ("min_price=100", ["burner", "oud"]),
        ("max_price=120", ["burner", "musk"]),
        ("min_price=100&max_price=200", ["burner"]),
        ("min_price=90&in_stock=false", ["musk"]),
        ("search=Oud", ["oud"]),
        ("search=oud", ["oud"]),
        ("search=العود", ["oud"]),
        ("search=مسك", ["musk"]),
        ("search=A-BURN", ["burner"]),
        ("search=Soap", []),  # tenant B's product
        ("sku=A-MUSK", ["musk"]),
        ("ordering=-price", ["oud", "burner", "musk"]),
        ("ordering=stock_quantity", ["musk", "oud", "burner"]),
    ],
)
def test_product_filters_search_and_ordering(two_tenants, store, query, expected):
    response = two_tenants.a.api.get(f"/api/v1/products?{query}")

    assert ids(response) == [getattr(store, name).pk for name in expected]
    assert response.json()["count"] == len(expected)


def test_product_in_stock_filter_is_scoped_for_tenant_b(two_tenants, store):
    assert ids(two_tenants.b.api.get("/api/v1/products?in_stock=false")) == [store.other_soap.pk]
    assert ids(two_tenants.b.api.get("/api/v1/products?search=العود")) == [store.other_oud.pk]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("min_price=abc", {"min_price": ["Enter a number."]}),
        ("max_price=", None),  # empty means no filter
    ],
)
def test_product_filter_bad_input(two_tenants, store, query, fields):
    response = two_tenants.a.api.get(f"/api/v1/products?{query}")

    if fields is None:
        assert ids(response) == [store.burner.pk, store.oud.pk, store.musk.pk]
    else:
        assert response.status_code == 400
        assert response.json() == invalid(fields)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=paid", ["paid_order"]),
        ("status=pending", ["pending_order"]),
        ("status=refunded", []),
        ("created_after=2026-01-15T00:00:00%2B03:00", ["pending_order"]),
        ("created_after=2026-01-10T12:00:00%2B03:00", ["pending_order", "paid_order"]),  # inclusive
        ("created_after=2026-02-02T00:00:00Z", []),
        ("created_before=2026-01-15T00:00:00Z", ["paid_order"]),
        ("search=A-1002", ["pending_order"]),
        ("ordering=total", ["pending_order", "paid_order"]),
    ],
)
def test_order_filters(two_tenants, store, query, expected):
    response = two_tenants.a.api.get(f"/api/v1/orders?{query}")

    assert ids(response) == [getattr(store, name).pk for name in expected]


def test_order_customer_filter(two_tenants, store):
    assert ids(two_tenants.a.api.get(f"/api/v1/orders?customer={store.customer.pk}")) == [store.paid_order.pk]


def test_order_customer_filter_with_another_tenants_customer_is_400_and_leaks_nothing(two_tenants, store):
    response = two_tenants.b.api.get(f"/api/v1/orders?customer={store.customer.pk}")

    assert response.status_code == 400
    assert response.json() == invalid(
        {"customer": ["Select a valid choice. That choice is not one of the available choices."]}
    )


def test_order_created_after_must_be_a_date_time(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/orders?created_after=yesterday")

    assert response.status_code == 400
    assert response.json() == invalid({"created_after": ["Enter a valid date/time."]})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date_from=2026-01-02", [2, 1]),
        ("date_from=2026-01-04", []),
        ("date_to=2026-01-01", [0]),
        ("date_from=2026-01-02&date_to=2026-01-02", [1]),
        ("ordering=views", [2, 0, 1]),
    ],
)
def test_product_stat_date_filters(two_tenants, store, query, expected):
    response = two_tenants.a.api.get(f"/api/v1/product-stats?{query}")

    assert ids(response) == [store.stats[index].pk for index in expected]


def test_product_stat_product_filter(two_tenants, store):
    by_oud = two_tenants.a.api.get(f"/api/v1/product-stats?product={store.oud.pk}")
    by_oud_since = two_tenants.a.api.get(f"/api/v1/product-stats?product={store.oud.pk}&date_from=2026-01-02")

    assert ids(by_oud) == [store.stats[1].pk, store.stats[0].pk]
    assert ids(by_oud_since) == [store.stats[1].pk]


def test_product_stat_filter_by_another_tenants_product_is_400_and_leaks_nothing(two_tenants, store):
    response = two_tenants.a.api.get(f"/api/v1/product-stats?product={store.other_oud.pk}")
    missing = two_tenants.a.api.get("/api/v1/product-stats?product=987654321")

    assert response.status_code == 400
    assert response.json() == invalid(
        {"product": ["Select a valid choice. That choice is not one of the available choices."]}
    )
    assert missing.json() == response.json()  # the same answer as an id that exists nowhere


def test_product_stat_date_from_must_be_a_date(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/product-stats?date_from=2026-13-01")

    assert response.status_code == 400
    assert response.json() == invalid({"date_from": ["Enter a valid date."]})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label=negative", ["complaint"]),
        ("label=positive", ["praise"]),
        ("label=neutral", ["neutral"]),
        ("platform=instagram", ["complaint"]),
        ("search=العود", ["praise"]),
        ("search=bad", []),  # tenant B's mention
        ("ordering=score", ["complaint", "neutral", "praise"]),
    ],
)
def test_sentiment_mention_filters(two_tenants, store, query, expected):
    response = two_tenants.a.api.get(f"/api/v1/sentiment-mentions?{query}")

    assert ids(response) == [getattr(store, name).pk for name in expected]


def test_sentiment_mention_product_filter(two_tenants, store):
    assert ids(two_tenants.a.api.get(f"/api/v1/sentiment-mentions?product={store.musk.pk}")) == [store.complaint.pk]
    refused = two_tenants.a.api.get(f"/api/v1/sentiment-mentions?product={store.other_oud.pk}")
    assert refused.status_code == 400
    assert refused.json() == invalid(
        {"product": ["Select a valid choice. That choice is not one of the available choices."]}
    )


def test_sentiment_mention_label_must_be_a_choice(two_tenants, store):
    response = two_tenants.a.api.get("/api/v1/sentiment-mentions?label=angry")

    assert response.status_code == 400
    assert response.json() == invalid({"label": ["Select a valid choice. angry is not one of the available choices."]})
    assert ids(two_tenants.b.api.get("/api/v1/sentiment-mentions?label=negative")) == [store.other_complaint.pk]
