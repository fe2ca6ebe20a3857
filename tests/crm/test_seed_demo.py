import re
import stat
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncDate

from crm import demo_data
from crm.demo_data import DEMO_OWNER_EMAIL, demo_season, seed_demo
from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo.models import Membership, Tenant
from tests.factories import UserFactory

RIYADH = ZoneInfo("Asia/Riyadh")
# A Saturday evening; its window (2026-08-24 to 2026-11-21) holds Saudi National Day.
FIXED_NOW = datetime(2026, 11, 21, 21, 30, tzinfo=RIYADH)
FIXED_TODAY = FIXED_NOW.date()
PRODUCTS = 50
OUT_OF_STOCK = 6
DRAFTS = 2
PUBLISHED = PRODUCTS - DRAFTS
DAYS = 90


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.fixture
def seeded(db, var_dir):
    return seed_demo(now=FIXED_NOW)


def _line_total(prefix=""):
    return ExpressionWrapper(
        F(f"{prefix}quantity") * F(f"{prefix}unit_price"), output_field=DecimalField(max_digits=14, decimal_places=2)
    )


def _table_counts():
    tenant_scoped = [Contact, Product, Order, OrderItem, ProductDailyStat, SentimentMention]
    counts = {model.__name__: model.objects.all_tenants().count() for model in tenant_scoped}
    counts["Tenant"] = Tenant.objects.count()
    counts["User"] = get_user_model().objects.count()
    counts["Membership"] = Membership.objects.count()
    return counts


def test_seed_creates_the_demo_tenant_and_a_staff_owner(seeded, var_dir):
    tenant = Tenant.objects.get(slug="demo")
    assert seeded.created is True
    assert seeded.tenant == tenant
    assert seeded.owner_email == DEMO_OWNER_EMAIL
    assert tenant.name == "دار العود | Dar Al Oud"
    assert tenant.business_type == Tenant.BusinessType.RETAIL
    assert tenant.default_language == "ar"
    assert tenant.currency == "SAR"
    assert tenant.timezone == "Asia/Riyadh"
    assert re.search(r"[\u0600-\u06ff]", tenant.target_audience)
    assert re.search(r"[\u0600-\u06ff]", tenant.brand_voice)

    owner = get_user_model().objects.get(email=DEMO_OWNER_EMAIL)
    assert owner.is_staff is True
    assert owner.is_superuser is False
    assert list(Membership.objects.filter(tenant=tenant).values_list("user", "role")) == [(owner.pk, "owner")]
    assert authenticate(username=DEMO_OWNER_EMAIL, password=seeded.password) == owner

    password_file = var_dir / "demo_owner_password"
    assert password_file.read_text().strip() == seeded.password
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


def test_seed_catalogue_has_exact_counts(seeded):
    products = Product.objects.for_tenant(seeded.tenant)
    assert products.count() == PRODUCTS
    assert products.filter(stock_quantity=0).count() == OUT_OF_STOCK
    assert products.filter(status=Product.Status.DRAFT).count() == DRAFTS
    assert products.filter(status=Product.Status.ACTIVE).count() == PUBLISHED
    assert products.filter(price__lte=0).count() == 0
    assert products.exclude(currency="SAR").count() == 0
    assert products.filter(description="").count() == 0
    assert products.values("sku").distinct().count() == PRODUCTS
    assert products.values("category").distinct().count() == 9
    assert all(re.search(r"[\u0600-\u06ff]", name) for name in products.values_list("name_ar", flat=True))
    assert seeded.counts["products"] == PRODUCTS
    assert seeded.counts["out_of_stock"] == OUT_OF_STOCK


def test_seed_orders_cover_each_of_the_90_local_days_and_totals_equal_their_lines(seeded):
    orders = Order.objects.for_tenant(seeded.tenant)
    assert orders.count() == seeded.counts["orders"]
    assert orders.count() > 500
    local_days = set(orders.annotate(day=TruncDate("created_at", tzinfo=RIYADH)).values_list("day", flat=True))
    assert local_days == {FIXED_TODAY - timedelta(days=offset) for offset in range(DAYS)}
    assert orders.filter(created_at__gt=FIXED_NOW).count() == 0

    mismatched = orders.annotate(lines=Sum(_line_total("items__"))).exclude(total=F("lines"))
    assert mismatched.count() == 0
    line_counts = set(orders.annotate(lines=Count("items")).values_list("lines", flat=True))
    assert line_counts == {1, 2, 3}
    items = OrderItem.objects.for_tenant(seeded.tenant)
    assert items.exclude(unit_price=F("product__price")).count() == 0
    assert items.exclude(product__status=Product.Status.ACTIVE).count() == 0

    assert set(orders.values_list("payment_method", flat=True)) == {"cash_on_delivery", "mada", "apple_pay", "tabby"}
    by_status = dict(orders.values_list("status").annotate(n=Count("id")))
    revenue_orders = sum(by_status.get(status, 0) for status in Order.REVENUE_STATUSES)
    assert by_status[Order.Status.DELIVERED] > orders.count() / 2
    assert revenue_orders > 0.85 * orders.count()
    assert by_status[Order.Status.CANCELLED] > 0
    assert by_status[Order.Status.REFUNDED] > 0
    assert orders.values("number").distinct().count() == orders.count()
    assert orders.filter(customer_name="").count() == 0


def test_seed_orders_are_busier_at_the_weekend_and_in_the_season(seeded):
    season = seeded.season
    assert (season.key, season.start, season.end) == ("national_day", date(2026, 9, 17), date(2026, 9, 24))
    per_day = dict(
        Order.objects.for_tenant(seeded.tenant)
        .annotate(day=TruncDate("created_at", tzinfo=RIYADH))
        .values_list("day")
        .annotate(n=Count("id"))
    )
    outside = {day: n for day, n in per_day.items() if day not in season and day != FIXED_TODAY}
    weekend = [n for day, n in outside.items() if day.weekday() in (3, 4)]
    weekdays = [n for day, n in outside.items() if day.weekday() not in (3, 4)]
    in_season = [n for day, n in per_day.items() if day in season]
    assert sum(weekend) / len(weekend) > 1.3 * sum(weekdays) / len(weekdays)
    assert sum(in_season) / len(in_season) > 1.5 * sum(outside.values()) / len(outside)


def test_seed_daily_stats_match_the_revenue_orders_of_each_product_and_day(seeded):
    stats = ProductDailyStat.objects.for_tenant(seeded.tenant)
    assert stats.count() == PUBLISHED * DAYS
    assert set(stats.values_list("date", flat=True)) == {FIXED_TODAY - timedelta(days=n) for n in range(DAYS)}
    sold = (
        OrderItem.objects.for_tenant(seeded.tenant)
        .filter(order__status__in=Order.REVENUE_STATUSES)
        .annotate(day=TruncDate("order__created_at", tzinfo=RIYADH))
        .values("product", "day")
        .annotate(units=Sum("quantity"), revenue=Sum(_line_total()))
    )
    expected = defaultdict(lambda: (0, Decimal("0.00")))
    expected.update({(row["product"], row["day"]): (row["units"], row["revenue"]) for row in sold})
    actual = {(product, day): (units, revenue) for product, day, units, revenue in stats.values_list(
        "product", "date", "units_sold", "revenue"
    )}  # fmt: skip
    assert len(sold) > 500
    assert all(key in actual for key in expected)
    assert {key: value for key, value in actual.items() if value != expected[key]} == {}
    assert stats.filter(views=0).count() == 0
    assert stats.filter(views__lt=F("units_sold")).count() == 0
    assert stats.filter(units_sold=0).exclude(revenue=0).count() == 0
    # Cancelled and refunded lines are left out, so they must exist for the check to mean something.
    assert OrderItem.objects.for_tenant(seeded.tenant).exclude(order__status__in=Order.REVENUE_STATUSES).count() > 0


def test_seed_contacts_and_mentions(seeded):
    contacts = Contact.objects.for_tenant(seeded.tenant)
    assert contacts.count() == 12
    assert all(re.fullmatch(r"\+9665\d{8}", phone) for phone in contacts.values_list("phone", flat=True))
    assert contacts.filter(email="").count() == 0
    assert contacts.annotate(n=Count("orders")).filter(n=0).count() == 0
    orders = Order.objects.for_tenant(seeded.tenant).filter(customer__isnull=False)
    assert orders.exclude(customer_name=F("customer__name")).count() == 0

    mentions = SentimentMention.objects.for_tenant(seeded.tenant)
    assert mentions.count() == 15
    platforms = {"x", "instagram", "snapchat", "tiktok", "google_reviews"}
    assert set(mentions.values_list("platform", flat=True)) == platforms
    for score, label in mentions.values_list("score", "label"):
        assert Decimal("-1") <= score <= Decimal("1")
        assert score.as_tuple().exponent == -3
        if label == "positive":
            assert score > Decimal("0.2")
        elif label == "negative":
            assert score < Decimal("-0.2")
        else:
            assert (label, abs(score) <= Decimal("0.2")) == ("neutral", True)
    assert set(mentions.values_list("label", flat=True)) == {"positive", "neutral", "negative"}
    assert mentions.filter(created_at__gt=FIXED_NOW).count() == 0
    assert mentions.filter(text__regex=r"^[A-Za-z]").count() == 3


def test_seed_command_twice_changes_nothing_and_keeps_the_password(db, var_dir):
    first = StringIO()
    call_command("seed_demo", stdout=first)
    counts = _table_counts()
    first_lines = first.getvalue().splitlines()
    assert first_lines[-2] == f"E-mail: {DEMO_OWNER_EMAIL}"
    password = first_lines[-1].removeprefix("Password: ")
    assert authenticate(username=DEMO_OWNER_EMAIL, password=password) is not None

    second = StringIO()
    call_command("seed_demo", stdout=second)
    second_lines = second.getvalue().splitlines()
    assert _table_counts() == counts
    assert "already seeded" in second_lines[0]
    assert second_lines[-2:] == [f"E-mail: {DEMO_OWNER_EMAIL}", f"Password: {password}"]
    assert authenticate(username=DEMO_OWNER_EMAIL, password=password) is not None


def test_seed_keeps_the_password_of_an_existing_owner_account(db, var_dir):
    owner = UserFactory(username=DEMO_OWNER_EMAIL, email=DEMO_OWNER_EMAIL)
    out = StringIO()
    result = seed_demo(stdout=out, now=FIXED_NOW)
    owner.refresh_from_db()
    assert result.created is True
    assert result.password is None
    assert owner.is_staff is True
    assert authenticate(username=DEMO_OWNER_EMAIL, password="correct-horse-battery") == owner
    assert Membership.objects.get(tenant=result.tenant).user == owner
    assert "changepassword" in out.getvalue().splitlines()[-1]
    assert not (var_dir / "demo_owner_password").exists()


def test_seed_does_not_print_a_stored_password_the_owner_has_changed(db, var_dir):
    seed_demo(now=FIXED_NOW)
    owner = get_user_model().objects.get(email=DEMO_OWNER_EMAIL)
    owner.set_password("changed-by-the-owner")
    owner.save()
    out = StringIO()
    result = seed_demo(stdout=out, now=FIXED_NOW)
    assert (result.created, result.password) == (False, None)
    assert out.getvalue().splitlines()[-1] == (
        f"Password: (unchanged, and not the one in {var_dir / 'demo_owner_password'}; "
        f"set one with: manage.py changepassword {DEMO_OWNER_EMAIL})"
    )


def test_seed_failure_leaves_nothing_written(db, var_dir, monkeypatch):
    def broken(score):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_data, "sentiment_label", broken)
    before = _table_counts()
    with pytest.raises(RuntimeError, match="boom"):
        seed_demo(now=FIXED_NOW)
    assert _table_counts() == before
    assert not Tenant.objects.filter(slug="demo").exists()
    assert not get_user_model().objects.filter(email=DEMO_OWNER_EMAIL).exists()
    assert not (var_dir / "demo_owner_password").exists()


def test_seed_is_deterministic_for_a_given_moment(db, var_dir):
    def snapshot(tenant):
        orders = Order.objects.for_tenant(tenant).order_by("number")
        return list(orders.values_list("number", "created_at", "total", "status", "payment_method", "customer_name"))

    def views(tenant):
        stats = ProductDailyStat.objects.for_tenant(tenant).order_by("date", "product__sku")
        return list(stats.values_list("product__sku", "date", "views"))

    first = seed_demo(now=FIXED_NOW)
    first_orders, first_views = snapshot(first.tenant), views(first.tenant)
    # OrderItem.product is PROTECT, so a tenant with orders cannot be deleted in one go.
    Order.objects.for_tenant(first.tenant).delete()
    first.tenant.delete()
    second = seed_demo(now=FIXED_NOW)
    assert snapshot(second.tenant) == first_orders
    assert views(second.tenant) == first_views


@pytest.mark.parametrize(
    ("today", "key", "start", "end"),
    [
        (date(2026, 11, 21), "national_day", date(2026, 9, 17), date(2026, 9, 24)),
        (date(2026, 12, 15), "white_friday", date(2026, 11, 21), date(2026, 11, 30)),
        (date(2026, 4, 15), "ramadan_eid", date(2026, 3, 10), date(2026, 3, 22)),
        (date(2026, 8, 1), "eid_al_adha", date(2026, 5, 21), date(2026, 5, 29)),
        (date(2027, 1, 10), "white_friday", date(2026, 11, 21), date(2026, 11, 30)),
        (date(2026, 9, 10), "campaign_week", date(2026, 8, 1), date(2026, 8, 7)),
    ],
)
def test_demo_season_is_the_latest_one_inside_the_window(today, key, start, end):
    season = demo_season(today)
    assert (season.key, season.start, season.end) == (key, start, end)
    assert today - timedelta(days=DAYS - 1) < season.start <= season.end < today
