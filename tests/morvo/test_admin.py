"""The back office: tenant-aware lists, 404 for other tenants' objects, roles, tokens."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from crm.models import Order, Product
from morvo.models import ApiToken, Membership, Tenant
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory, UserFactory

ADMIN_PAGES = [
    "product",
    "order",
    "productdailystat",
    "sentimentmention",
    "contact",
]


@pytest.fixture
def catalogue(two_tenants: Any) -> dict[str, Product]:
    return {
        "a": ProductFactory(tenant=two_tenants.a.tenant, sku="A-1", name_en="Alpha Oud"),
        "b": ProductFactory(tenant=two_tenants.b.tenant, sku="B-1", name_en="Beta Musk"),
    }


@pytest.mark.parametrize("model", ADMIN_PAGES)
def test_owner_sees_each_store_list(two_tenants: Any, model: str) -> None:
    response = two_tenants.a.web.get(f"/admin/crm/{model}/")
    assert response.status_code == 200


def test_product_list_shows_only_the_selected_tenant(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    body = two_tenants.a.web.get("/admin/crm/product/").content.decode()
    assert "Alpha Oud" in body
    assert "Beta Musk" not in body


@pytest.mark.parametrize("suffix", ["change/", "delete/", "history/"])
def test_another_tenants_product_is_404_like_a_missing_one(
    two_tenants: Any, catalogue: dict[str, Product], suffix: str
) -> None:
    other = two_tenants.a.web.get(f"/admin/crm/product/{catalogue['b'].pk}/{suffix}")
    missing = two_tenants.a.web.get(f"/admin/crm/product/999999/{suffix}")
    assert other.status_code == 404
    assert missing.status_code == 404


def test_posting_to_another_tenants_product_changes_nothing(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    response = two_tenants.a.web.post(
        f"/admin/crm/product/{catalogue['b'].pk}/change/",
        {"sku": "B-1", "name_ar": "x", "price": "1", "currency": "SAR", "stock_quantity": "0", "status": "active"},
    )
    assert response.status_code == 404
    assert Product.objects.for_tenant(two_tenants.b.tenant).get().stock_quantity == 10


def test_owner_adds_a_product_into_their_own_tenant(two_tenants: Any) -> None:
    response = two_tenants.a.web.post(
        "/admin/crm/product/add/",
        {
            "sku": "NEW-1",
            "name_ar": "مسك أبيض",
            "name_en": "White Musk",
            "price": "120.00",
            "currency": "SAR",
            "stock_quantity": "5",
            "status": "active",
        },
    )
    assert response.status_code == 302
    product = Product.objects.for_tenant(two_tenants.a.tenant).get(sku="NEW-1")
    assert product.price == Decimal("120.00")
    assert not Product.objects.for_tenant(two_tenants.b.tenant).filter(sku="NEW-1").exists()


def test_duplicate_sku_is_a_form_error_and_writes_nothing(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    data = {"sku": "A-1", "name_ar": "x", "price": "1", "currency": "SAR", "stock_quantity": "1", "status": "active"}
    response = two_tenants.a.web.post("/admin/crm/product/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Product.objects.for_tenant(two_tenants.a.tenant).count() == 1
    # The same SKU in another tenant is fine: uniqueness is per tenant.
    assert two_tenants.b.web.post("/admin/crm/product/add/", data).status_code == 302


def test_order_item_product_choices_are_the_orders_tenant_only(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    order = OrderFactory(tenant=two_tenants.a.tenant)
    OrderItemFactory(order=order, product=catalogue["a"])
    response = two_tenants.a.web.get(f"/admin/crm/order/{order.pk}/change/")
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    choices = {product.pk for product in formset.forms[0].fields["product"].queryset}
    assert choices == {catalogue["a"].pk}


def test_viewer_can_look_but_not_change(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    viewer = UserFactory()
    Membership.objects.create(user=viewer, tenant=two_tenants.a.tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/crm/product/").status_code == 200
    assert client.get("/admin/crm/product/add/").status_code == 403
    response = client.post(
        f"/admin/crm/product/{catalogue['a'].pk}/change/",
        {"sku": "A-1", "name_ar": "x", "price": "1", "currency": "SAR", "stock_quantity": "99", "status": "active"},
    )
    assert response.status_code == 403
    assert Product.objects.for_tenant(two_tenants.a.tenant).get().stock_quantity == 10


def test_superuser_sees_every_tenant(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    root = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    body = client.get("/admin/crm/product/").content.decode()
    assert "Alpha Oud" in body
    assert "Beta Musk" in body
    assert client.get(f"/admin/crm/product/{catalogue['b'].pk}/change/").status_code == 200


def test_member_sees_only_their_own_tenant_in_tenants(two_tenants: Any) -> None:
    body = two_tenants.a.web.get("/admin/morvo/tenant/").content.decode()
    assert "alpha" in body
    assert "beta" not in body
    assert two_tenants.a.web.get(f"/admin/morvo/tenant/{two_tenants.b.tenant.pk}/change/").status_code == 404


def test_tokens_are_listed_per_tenant_and_revocable(two_tenants: Any) -> None:
    token_a = ApiToken.objects.get(tenant=two_tenants.a.tenant)
    token_b = ApiToken.objects.get(tenant=two_tenants.b.tenant)
    body = two_tenants.a.web.get("/admin/morvo/apitoken/").content.decode()
    assert token_a.key_prefix in body
    assert token_b.key_prefix not in body
    assert two_tenants.a.api.get("/api/v1/me").status_code == 200

    response = two_tenants.a.web.post(
        "/admin/morvo/apitoken/", {"action": "revoke", "_selected_action": [token_a.pk, token_b.pk]}
    )
    assert response.status_code == 302
    token_a.refresh_from_db()
    token_b.refresh_from_db()
    assert token_a.revoked_at is not None
    assert token_b.revoked_at is None  # not this tenant's: untouched
    assert two_tenants.a.api.get("/api/v1/me").status_code == 401
    assert two_tenants.b.api.get("/api/v1/me").status_code == 200


def test_issuing_a_token_in_the_admin_shows_the_key_once(two_tenants: Any) -> None:
    response = two_tenants.a.web.post(
        "/admin/morvo/apitoken/add/", {"name": "shop site", "user": two_tenants.a.owner.pk}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(tenant=two_tenants.a.tenant, name="shop site")
    messages = [str(message) for message in response.context["messages"]]
    key = next(word for message in messages for word in message.split() if word.startswith("mv_"))
    assert key.startswith(token.key_prefix)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me").json()["tenant"]["slug"] == "alpha"


def test_tenant_b_owner_cannot_issue_a_token_for_a_user_of_tenant_a(two_tenants: Any) -> None:
    before = ApiToken.objects.count()
    response = two_tenants.b.web.post("/admin/morvo/apitoken/add/", {"name": "x", "user": two_tenants.a.owner.pk})
    assert response.status_code == 200  # the form refuses the choice
    assert "user" in response.context["adminform"].form.errors
    assert ApiToken.objects.count() == before


def test_deleting_a_tenant_deletes_its_store_data(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    order = OrderFactory(tenant=two_tenants.a.tenant)
    OrderItemFactory(order=order, product=catalogue["a"])
    Tenant.objects.filter(pk=two_tenants.a.tenant.pk).delete()
    assert not Order.objects.all_tenants().filter(pk=order.pk).exists()
    assert Product.objects.all_tenants().filter(pk=catalogue["b"].pk).exists()


def test_superuser_switching_into_a_tenant_works_there(two_tenants: Any, catalogue: dict[str, Product]) -> None:
    root = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    response = client.post("/app/tenant/switch/", {"tenant": two_tenants.b.tenant.pk, "next": "/admin/"})
    assert response.status_code == 302
    body = client.get("/admin/").content.decode()
    assert "Beta Store" in body
    added = client.post(
        "/admin/crm/product/add/",
        {"sku": "ROOT-1", "name_ar": "ر", "price": "5", "currency": "SAR", "stock_quantity": "1", "status": "active"},
    )
    assert added.status_code == 302
    assert Product.objects.for_tenant(two_tenants.b.tenant).filter(sku="ROOT-1").count() == 1
    assert Product.objects.for_tenant(two_tenants.a.tenant).filter(sku="ROOT-1").count() == 0


def test_arabic_pages_print_prices_with_a_decimal_point(two_tenants: Any) -> None:
    ProductFactory(tenant=two_tenants.a.tenant, sku="P-890", price=Decimal("890.00"))
    body = two_tenants.a.web.get("/admin/crm/product/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert 'dir="rtl"' in body
    assert "890.00" in body
    assert "890,00" not in body
