"""The fail-closed scoped manager, ``tenant_context``, the Celery tenant task and the HTTP
middleware."""

from __future__ import annotations

import asyncio
import contextvars
from decimal import Decimal

import pytest
from django.db.models import Sum

from crm.models import Order, OrderItem, Product
from morvo import tenancy
from morvo.celery import TenantGone, TenantTask, tenant_task
from morvo.models import Tenant
from morvo.tasks import tenant_broadcast_task
from morvo.tenancy import TenantScopeError, current_tenant, require_tenant, tenant_context
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory, TenantFactory


@pytest.fixture
def catalogue(two_tenants):
    """Two products of A (stock 5 and 7), one of B (stock 11)."""
    a, b = two_tenants.a.tenant, two_tenants.b.tenant
    return {
        "a": [ProductFactory(tenant=a, stock_quantity=5), ProductFactory(tenant=a, stock_quantity=7)],
        "b": [ProductFactory(tenant=b, stock_quantity=11)],
    }


def stocks() -> dict[int, int]:
    return dict(Product.objects.all_tenants().values_list("pk", "stock_quantity"))


# --- outside any tenant, every way to run a query refuses ---------------------------------------

UNSCOPED_READS = {
    "list(all)": lambda: list(Product.objects.all()),
    "list(filter)": lambda: list(Product.objects.filter(stock_quantity__gt=0)),
    "iterate": lambda: [product for product in Product.objects.all()],
    "iterator": lambda: list(Product.objects.all().iterator()),
    "count": lambda: Product.objects.count(),
    "filter().count": lambda: Product.objects.filter(category="perfume").count(),
    "exists": lambda: Product.objects.exists(),
    "aggregate": lambda: Product.objects.aggregate(total=Sum("stock_quantity")),
    "get": lambda: Product.objects.get(sku="SKU-0000"),
    "first": lambda: Product.objects.first(),
    "len": lambda: len(Product.objects.all()),
    "bool": lambda: bool(Product.objects.all()),
    "index": lambda: Product.objects.order_by("pk")[0],
    "values": lambda: list(Product.objects.values("pk")),
    "values_list": lambda: list(Product.objects.values_list("pk", flat=True)),
    "in_bulk": lambda: Product.objects.in_bulk(),
    "exclude": lambda: list(Product.objects.exclude(stock_quantity=0)),
    "latest": lambda: Product.objects.latest("created_at"),
    "explain": lambda: Product.objects.all().explain(),
    "order_by().distinct()": lambda: list(Product.objects.order_by("category").distinct()),
    "other model": lambda: list(Order.objects.all()),
}


@pytest.mark.parametrize("run", UNSCOPED_READS.values(), ids=UNSCOPED_READS.keys())
def test_unscoped_reads_raise(catalogue, run):
    assert current_tenant() is None

    with pytest.raises(TenantScopeError, match="tenant-scoped and no tenant is active"):
        run()


def test_unscoped_contains_raises(catalogue):
    with pytest.raises(TenantScopeError):
        Product.objects.all().contains(catalogue["a"][0])


def test_unscoped_update_raises_and_changes_nothing(catalogue):
    before = stocks()

    with pytest.raises(TenantScopeError):
        Product.objects.update(stock_quantity=0)
    with pytest.raises(TenantScopeError):
        Product.objects.filter(stock_quantity__gt=0).update(stock_quantity=0)

    assert stocks() == before


def test_unscoped_delete_raises_and_deletes_nothing(catalogue):
    with pytest.raises(TenantScopeError):
        Product.objects.all().delete()
    with pytest.raises(TenantScopeError):
        Product.objects.filter(stock_quantity=5).delete()

    assert Product.objects.all_tenants().count() == 3


def test_unscoped_get_or_create_raises_and_creates_nothing(catalogue, two_tenants):
    with pytest.raises(TenantScopeError):
        Product.objects.get_or_create(tenant=two_tenants.a.tenant, sku="NEW", defaults={"name_ar": "x", "price": 1})

    assert Product.objects.all_tenants().filter(sku="NEW").count() == 0


def test_building_a_queryset_without_running_it_does_not_raise(catalogue):
    queryset = Product.objects.filter(stock_quantity__gt=0).exclude(category="x").order_by("-price")

    sql = str(queryset.query)

    assert "crm_product" in sql
    assert '"tenant_id" =' not in sql  # nothing was scoped: it would refuse to run
    with pytest.raises(TenantScopeError):
        list(queryset)


def test_for_tenant_none_raises(db):
    with pytest.raises(TenantScopeError, match="needs a tenant"):
        Product.objects.for_tenant(None)


def test_require_tenant_outside_a_context_raises(db):
    with pytest.raises(TenantScopeError):
        require_tenant()


def test_an_unscoped_queryset_combined_with_a_scoped_one_still_refuses(catalogue, two_tenants):
    """``for_tenant(a) | <unscoped>`` must not read every tenant's rows."""
    scoped = Product.objects.for_tenant(two_tenants.a.tenant)
    unscoped = Product.objects.filter(stock_quantity__gt=0)

    combinations = (
        scoped | unscoped,
        unscoped | scoped,
        scoped ^ unscoped,
        scoped & unscoped,
        scoped.union(unscoped),
        scoped.union(scoped, unscoped),
    )
    for combined in combinations:
        with pytest.raises(TenantScopeError):
            list(combined)
    # A sliced side makes Django rebuild the query on the base manager, which cannot refuse
    # later, so the combination itself refuses.
    with pytest.raises(TenantScopeError):
        scoped.order_by("pk")[:1] | unscoped


def test_scoped_querysets_of_one_tenant_combine(catalogue, two_tenants):
    a = two_tenants.a.tenant
    low = Product.objects.for_tenant(a).filter(stock_quantity=5)
    high = Product.objects.for_tenant(a).filter(stock_quantity=7)

    assert sorted(p.pk for p in low | high) == sorted(p.pk for p in catalogue["a"])
    assert sorted(p.pk for p in low.union(high)) == sorted(p.pk for p in catalogue["a"])
    assert [p.pk for p in Product.objects.for_tenant(a).order_by("pk")[:1] | high] == sorted(
        p.pk for p in catalogue["a"]
    )
    with tenant_context(a):
        assert sorted(p.pk for p in Product.objects.filter(stock_quantity=5) | high) == sorted(
            p.pk for p in catalogue["a"]
        )


# --- inside a tenant ---------------------------------------------------------------------------


def test_inside_tenant_context_only_that_tenants_rows(catalogue, two_tenants):
    a_ids = sorted(p.pk for p in catalogue["a"])

    with tenant_context(two_tenants.a.tenant):
        assert sorted(p.pk for p in Product.objects.all()) == a_ids
        assert Product.objects.count() == 2
        assert Product.objects.filter(stock_quantity__gt=6).count() == 1
        assert Product.objects.exists() is True
        assert Product.objects.aggregate(total=Sum("stock_quantity")) == {"total": 12}
        assert Product.objects.filter(pk=catalogue["b"][0].pk).exists() is False
        with pytest.raises(Product.DoesNotExist):
            Product.objects.get(pk=catalogue["b"][0].pk)


def test_update_inside_tenant_context_touches_only_that_tenant(catalogue, two_tenants):
    with tenant_context(two_tenants.a.tenant):
        assert Product.objects.update(stock_quantity=0) == 2

    assert stocks() == {catalogue["a"][0].pk: 0, catalogue["a"][1].pk: 0, catalogue["b"][0].pk: 11}


def test_delete_inside_tenant_context_touches_only_that_tenant(catalogue, two_tenants):
    with tenant_context(two_tenants.b.tenant):
        deleted, _ = Product.objects.all().delete()

    assert deleted == 1
    assert sorted(stocks()) == sorted(p.pk for p in catalogue["a"])


def test_for_tenant_reads_only_that_tenant_even_inside_another_context(catalogue, two_tenants):
    b = two_tenants.b.tenant

    assert [p.pk for p in Product.objects.for_tenant(b)] == [catalogue["b"][0].pk]
    assert Product.objects.for_tenant(b).count() == 1
    with tenant_context(two_tenants.a.tenant):
        assert [p.pk for p in Product.objects.for_tenant(b)] == [catalogue["b"][0].pk]


def test_all_tenants_reads_both(catalogue):
    expected = sorted(p.pk for p in catalogue["a"] + catalogue["b"])

    assert sorted(p.pk for p in Product.objects.all_tenants()) == expected
    assert Product.objects.all_tenants().count() == 3
    assert Product.objects.all_tenants().filter(stock_quantity__gt=6).count() == 2
    assert Product.objects.all_tenants().aggregate(total=Sum("stock_quantity")) == {"total": 23}


def test_related_managers_work_outside_a_context(two_tenants):
    order = OrderFactory(tenant=two_tenants.a.tenant)
    items = [OrderItemFactory(order=order), OrderItemFactory(order=order)]
    OrderItemFactory(order=OrderFactory(tenant=two_tenants.b.tenant))
    loaded = Order.objects.for_tenant(two_tenants.a.tenant).get(pk=order.pk)

    assert [item.pk for item in loaded.items.all()] == [item.pk for item in items]
    assert loaded.items.count() == 2
    assert loaded.items.aggregate(total=Sum("unit_price")) == {"total": Decimal("398.00")}
    assert loaded.items.first().product.tenant_id == two_tenants.a.tenant.pk  # forward relation


def test_related_manager_of_another_tenant_context_is_still_the_objects_own(two_tenants):
    order = OrderFactory(tenant=two_tenants.a.tenant)
    item = OrderItemFactory(order=order)

    with tenant_context(two_tenants.b.tenant):
        assert [i.pk for i in order.items.all()] == [item.pk]


def test_refresh_from_db_and_save_work_outside_a_context(two_tenants):
    product = ProductFactory(tenant=two_tenants.a.tenant, stock_quantity=1)

    product.stock_quantity = 9
    product.save()
    product.refresh_from_db()

    assert product.stock_quantity == 9


def test_order_items_cascade_on_delete_of_a_loaded_order(two_tenants):
    order = OrderFactory(tenant=two_tenants.a.tenant)
    OrderItemFactory(order=order)

    order.delete()

    assert OrderItem.objects.all_tenants().count() == 0


# --- tenant_context ----------------------------------------------------------------------------


def test_tenant_context_sets_and_resets(two_tenants):
    a, b = two_tenants.a.tenant, two_tenants.b.tenant
    assert current_tenant() is None

    with tenant_context(a) as active:
        assert active == a
        assert current_tenant() == a
        assert require_tenant() == a
        with tenant_context(b):
            assert current_tenant() == b
            with tenant_context(None):
                assert current_tenant() is None
                with pytest.raises(TenantScopeError):
                    Product.objects.count()
            assert current_tenant() == b
        assert current_tenant() == a

    assert current_tenant() is None


def test_tenant_context_resets_after_an_exception(two_tenants):
    with pytest.raises(ValueError, match="boom"), tenant_context(two_tenants.a.tenant):
        raise ValueError("boom")

    assert current_tenant() is None
    with pytest.raises(TenantScopeError):
        Product.objects.count()


def test_activate_and_deactivate(two_tenants):
    token = tenancy.activate(two_tenants.a.tenant)
    try:
        assert current_tenant() == two_tenants.a.tenant
    finally:
        tenancy.deactivate(token)

    assert current_tenant() is None


def test_a_queryset_made_inside_a_context_stays_scoped_after_it(catalogue, two_tenants):
    with tenant_context(two_tenants.a.tenant):
        queryset = Product.objects.all()

    assert sorted(p.pk for p in queryset) == sorted(p.pk for p in catalogue["a"])


def test_a_queryset_made_outside_a_context_refuses_inside_one(catalogue, two_tenants):
    """Scoping is decided when the queryset is made, not when it runs."""
    queryset = Product.objects.all()

    with tenant_context(two_tenants.a.tenant), pytest.raises(TenantScopeError):
        list(queryset)


def test_context_does_not_leak_into_a_new_context_copy(two_tenants):
    seen: list[Tenant | None] = []

    with tenant_context(two_tenants.a.tenant):
        contextvars.Context().run(lambda: seen.append(current_tenant()))

    assert seen == [None]


async def test_context_is_per_asyncio_task(db):
    """Two concurrent tasks each see only their own tenant."""
    first, second = object(), object()
    seen: dict[str, object] = {}
    entered = asyncio.Event()

    async def work(name: str, tenant: object, wait: bool) -> None:
        with tenant_context(tenant):  # type: ignore[arg-type]
            if wait:
                await entered.wait()
            else:
                entered.set()
                await asyncio.sleep(0)
            seen[name] = current_tenant()

    await asyncio.gather(work("first", first, True), work("second", second, False))

    assert seen == {"first": first, "second": second}
    assert current_tenant() is None


# --- the Celery tenant task --------------------------------------------------------------------


@tenant_task(name="tests.tenancy.probe_task")
def probe_task(tenant: Tenant, label: str, *, times: int = 1) -> dict[str, object]:
    return {
        "tenant": tenant.pk,
        "active": current_tenant().pk if current_tenant() else None,
        "label": label * times,
        "products": sorted(Product.objects.values_list("sku", flat=True)),
    }


def test_tenant_task_runs_with_its_tenant_active_and_passed_first(catalogue, two_tenants):
    b = two_tenants.b.tenant

    result = probe_task(b.pk, "ok", times=2)

    assert result == {"tenant": b.pk, "active": b.pk, "label": "okok", "products": [catalogue["b"][0].sku]}
    assert current_tenant() is None


def test_tenant_task_is_a_tenant_task_that_does_not_retry_a_gone_tenant():
    assert isinstance(probe_task, TenantTask)
    assert TenantGone in probe_task.throws
    assert isinstance(tenant_broadcast_task, TenantTask)


def test_tenant_task_of_an_unknown_tenant_raises_tenant_gone(db):
    with pytest.raises(TenantGone):
        probe_task(987654321, "x")


def test_tenant_task_of_an_inactive_tenant_raises_tenant_gone(db):
    tenant = TenantFactory(is_active=False)

    with pytest.raises(TenantGone):
        probe_task(tenant.pk, "x")


@pytest.mark.parametrize("first_argument", ["1", 1.0, None, True])
def test_tenant_task_first_argument_must_be_an_int(two_tenants, first_argument):
    with pytest.raises(TypeError, match="the first argument must be a tenant id"):
        probe_task(first_argument, "x")


def test_tenant_task_given_a_tenant_object_raises_type_error(two_tenants):
    with pytest.raises(TypeError):
        probe_task(two_tenants.a.tenant, "x")


def test_tenant_task_resets_the_tenant_after_a_failure(two_tenants):
    @tenant_task(name="tests.tenancy.failing_task")
    def failing_task(tenant: Tenant) -> None:
        raise RuntimeError(f"failed in {tenant.slug}")

    with pytest.raises(RuntimeError, match="failed in alpha"):
        failing_task(two_tenants.a.tenant.pk)

    assert current_tenant() is None


def test_tenant_broadcast_task_goes_through_the_tenant_task(two_tenants, monkeypatch):
    sent: list[tuple[int, dict, object]] = []
    monkeypatch.setattr(
        "morvo.realtime.tenant_broadcast",
        lambda tenant_id, payload: sent.append((tenant_id, payload, current_tenant())),
    )

    tenant_broadcast_task(two_tenants.a.tenant.pk, {"type": "ping"})

    assert sent == [(two_tenants.a.tenant.pk, {"type": "ping"}, two_tenants.a.tenant)]


# --- the HTTP middleware -----------------------------------------------------------------------


def test_middleware_sets_the_members_tenant_on_the_request(two_tenants):
    response = two_tenants.a.web.get("/app/")

    assert response.status_code == 200
    assert response.wsgi_request.tenant == two_tenants.a.tenant
    assert response.wsgi_request.membership.role == "owner"
    assert current_tenant() is None  # reset after the request


def test_middleware_sets_no_tenant_for_anonymous_callers(db, client):
    response = client.get("/healthz")

    assert response.wsgi_request.tenant is None
    assert response.wsgi_request.membership is None


def test_middleware_skips_an_inactive_tenant(two_tenants):
    Tenant.objects.filter(pk=two_tenants.a.tenant.pk).update(is_active=False)

    response = two_tenants.a.web.get("/app/")

    assert response.wsgi_request.tenant is None
