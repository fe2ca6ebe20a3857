"""The server-rendered pages: accounts (allauth + MFA), the landing page, the admin branding.

Pages answer in Arabic (right to left) unless the visitor chose English; every test that
reads text states the language it expects.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Order, Product
from morvo.middleware import SESSION_TENANT_KEY
from morvo.models import Membership, Tenant
from tests.factories import MembershipFactory, OrderFactory, ProductFactory, TenantFactory, UserFactory

PASSWORD = "correct-horse-battery"  # the factories' password
SIGNUP_PASSWORD = "Qamar-Riyadh-2031!"


def english_client() -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def page(response) -> str:
    """The page's HTML with the whitespace around tags removed and runs of spaces collapsed."""
    html = re.sub(r"\s+", " ", response.content.decode())
    return re.sub(r"\s*(<[^>]+>)\s*", r"\1", html)


def html_root(response) -> str:
    """The opening <html …> tag of a page."""
    match = re.search(r"<html[^>]*>", response.content.decode())
    assert match, "no <html> tag"
    return match.group(0)


def stat_values(response, value_class: str) -> dict[str, str]:
    """{data-stat: the text of its value} for the headline cards of a page."""
    values = {}
    for name, card in re.findall(r'data-stat="([a-z-]+)">(.*?)</div>', page(response)):
        opening = re.search(rf'<span class="{value_class}[^"]*">', card)
        assert opening, f"card {name} has no value"
        value = re.split(r'<span class="[a-z-]*__hint', card[opening.end() :])[0]
        values[name] = " ".join(re.sub(r"<[^>]+>", " ", value).split())
    return values


def sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def fill_store(tenant: Tenant) -> None:
    """4 orders in the last 30 days (3 count as revenue: 1,350.50), 1 older; 6 active
    products of which 2 are out of stock, plus a draft that does not count."""
    now = timezone.now()
    OrderFactory(tenant=tenant, total=Decimal("100.00"), status=Order.Status.PAID)
    OrderFactory(tenant=tenant, total=Decimal("250.50"), status=Order.Status.SHIPPED)
    OrderFactory(tenant=tenant, total=Decimal("1000.00"), status=Order.Status.DELIVERED)
    OrderFactory(tenant=tenant, total=Decimal("999.00"), status=Order.Status.CANCELLED)
    OrderFactory(tenant=tenant, total=Decimal("500.00"), status=Order.Status.PAID, created_at=now - timedelta(days=45))
    for _ in range(4):
        ProductFactory(tenant=tenant, stock_quantity=5)
    for _ in range(2):
        ProductFactory(tenant=tenant, stock_quantity=0)
    ProductFactory(tenant=tenant, stock_quantity=0, status=Product.Status.DRAFT)


# --------------------------------------------------------------------------- language


def test_login_page_is_arabic_and_right_to_left_by_default(client, db):
    response = client.get(reverse("account_login"))

    assert response.status_code == 200
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    body = page(response)
    assert "<h1>تسجيل الدخول</h1>" in body
    assert "رفيقك التسويقي بالعربية والإنجليزية" in body
    assert 'href="/static/morvo/morvo.css"' in body
    # The language switcher offers English, posting back to this page.
    assert 'action="/i18n/setlang/"' in body
    assert '<input type="hidden" name="next" value="/accounts/login/">' in body
    assert 'name="language" value="en"' in body


def test_login_page_in_english_by_cookie_is_left_to_right(db):
    response = english_client().get(reverse("account_login"))

    assert response.status_code == 200
    assert html_root(response) == '<html lang="en" dir="ltr">'
    body = page(response)
    assert "<h1>Sign In</h1>" in body
    assert "تسجيل الدخول" not in body
    assert 'name="language" value="ar"' in body


def test_login_page_in_english_by_accept_language_is_left_to_right(client, db):
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert html_root(response) == '<html lang="en" dir="ltr">'
    assert "Your marketing companion, in Arabic and English" in response.content.decode()


def test_language_switch_sets_the_cookie_and_returns_to_the_page(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/accounts/login/"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert html_root(client.get("/accounts/login/")) == '<html lang="en" dir="ltr">'


# --------------------------------------------------------------------------- signup


def test_signup_page_shows_the_business_fields_in_arabic(client, db):
    response = client.get(reverse("account_signup"))

    assert response.status_code == 200
    body = page(response)
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    for field in ("business_name", "business_type", "default_language", "email", "password1", "password2"):
        assert f'name="{field}"' in body
    assert '<label for="id_business_name">اسم النشاط التجاري</label>' in body
    assert '<label for="id_business_type">نوع النشاط</label>' in body
    assert '<option value="restaurant">مطعم</option>' in body
    # Business fields come first, as TenantSignupForm orders them.
    assert body.index('name="business_name"') < body.index('name="email"') < body.index('name="password1"')


def test_signup_creates_exactly_one_tenant_and_its_owner(client, db):
    response = client.post(
        reverse("account_signup"),
        {
            "business_name": "عطور الورد",
            "business_type": Tenant.BusinessType.BEAUTY_SALON,
            "default_language": Tenant.Language.ENGLISH,
            "email": "noura@rose.test",
            "password1": SIGNUP_PASSWORD,
            "password2": SIGNUP_PASSWORD,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    user = get_user_model().objects.get(email="noura@rose.test")
    assert Tenant.objects.count() == 1
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.business_type, tenant.default_language) == (
        "عطور الورد",
        "beauty_salon",
        "en",
    )
    assert list(Membership.objects.values_list("user_id", "tenant_id", "role")) == [(user.pk, tenant.pk, "owner")]
    assert signed_in_user_id(client) == str(user.pk)
    assert client.session[SESSION_TENANT_KEY] == tenant.pk
    assert "عطور الورد" in client.get("/app/").content.decode()


def test_signup_without_business_name_creates_nothing_and_shows_the_error(client, db):
    response = client.post(
        reverse("account_signup"),
        {
            "business_name": "   ",
            "business_type": Tenant.BusinessType.RETAIL,
            "default_language": Tenant.Language.ARABIC,
            "email": "nobody@rose.test",
            "password1": SIGNUP_PASSWORD,
            "password2": SIGNUP_PASSWORD,
        },
    )

    assert response.status_code == 200
    body = page(response)
    assert 'class="field field--invalid"' in body
    assert "هذا الحقل مطلوب." in body
    assert get_user_model().objects.count() == 0
    assert Tenant.objects.count() == 0
    assert Membership.objects.count() == 0
    assert EmailAddress.objects.count() == 0
    assert mail.outbox == []
    assert signed_in_user_id(client) is None


# --------------------------------------------------------------------------- sign in / out


def test_login_with_email_and_password_signs_in(client, tenant_world):
    response = sign_in(client, "owner@solo.test")

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    assert signed_in_user_id(client) == str(tenant_world.owner.pk)


def test_login_with_a_wrong_password_does_not_sign_in(client, tenant_world):
    response = sign_in(client, "owner@solo.test", "not-the-password")

    assert response.status_code == 200
    assert "عنوان البريد الإلكتروني و / أو كلمة المرور غير صحيحة." in response.content.decode()
    assert signed_in_user_id(client) is None


def test_logout_needs_a_post(client, tenant_world):
    sign_in(client, "owner@solo.test")

    confirm = client.get(reverse("account_logout"))
    assert confirm.status_code == 200
    assert signed_in_user_id(client) == str(tenant_world.owner.pk)

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert signed_in_user_id(client) is None


# --------------------------------------------------------------------------- password reset


def test_password_reset_sends_one_email_and_the_key_sets_a_new_password(client, tenant_world):
    request_page = client.get(reverse("account_reset_password"))
    assert request_page.status_code == 200
    assert html_root(request_page) == '<html lang="ar" dir="rtl">'

    response = client.post(reverse("account_reset_password"), {"email": "owner@solo.test"})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@solo.test"]
    assert client.get(response["Location"]).status_code == 200

    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body).group(1)
    key_page = client.get(link, follow=True)
    assert key_page.status_code == 200
    assert 'name="password1"' in key_page.content.decode()
    set_password = client.post(
        key_page.redirect_chain[-1][0], {"password1": SIGNUP_PASSWORD, "password2": SIGNUP_PASSWORD}
    )
    assert set_password.status_code == 302
    assert set_password["Location"] == reverse("account_reset_password_from_key_done")
    assert client.get(set_password["Location"]).status_code == 200
    tenant_world.owner.refresh_from_db()
    assert tenant_world.owner.check_password(SIGNUP_PASSWORD)


# --------------------------------------------------------------------------- two-factor


def test_mfa_index_renders_for_a_signed_in_user(tenant_world):
    response = tenant_world.web.get(reverse("mfa_index"))

    assert response.status_code == 200
    body = page(response)
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    assert 'class="manage__nav"' in body
    assert f'href="{reverse("mfa_activate_totp")}"' in body


def test_totp_activation_asks_for_the_password_then_shows_the_qr_code(tenant_world):
    web = tenant_world.web
    activate_url = reverse("mfa_activate_totp")

    first = web.get(activate_url)
    assert first.status_code == 302
    assert first["Location"] == f"{reverse('account_reauthenticate')}?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    confirm = web.get(first["Location"])
    assert confirm.status_code == 200
    assert 'name="password"' in page(confirm)

    reauthenticated = web.post(first["Location"], {"password": PASSWORD, "next": activate_url})
    assert reauthenticated.status_code == 302
    assert reauthenticated["Location"] == activate_url

    response = web.get(activate_url)
    assert response.status_code == 200
    body = page(response)
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    assert '<img src="data:image/svg+xml;base64,' in body
    assert 'class="qr"' in body
    assert 'id="authenticator_secret"' in body
    assert 'name="code"' in body


def test_mfa_pages_send_anonymous_users_to_login(client, db):
    for name in ("mfa_index", "mfa_activate_totp"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_email_management_page_renders(tenant_world):
    EmailAddress.objects.create(user=tenant_world.owner, email="owner@solo.test", verified=True, primary=True)

    response = tenant_world.web.get(reverse("account_email"))

    assert response.status_code == 200
    assert "owner@solo.test" in response.content.decode()


# --------------------------------------------------------------------------- landing page


def test_app_home_shows_the_tenant_and_its_headline(tenant_world):
    fill_store(tenant_world.tenant)

    response = tenant_world.web.get("/app/")

    assert response.status_code == 200
    body = page(response)
    assert '<strong class="tenant-name">متجر العطور</strong>' in body
    assert stat_values(response, "stat__value") == {
        "orders": "4",
        "revenue": "1,350.50 SAR",
        "stock-outs": "2",
        "products": "6",
    }
    assert 'href="/admin/"' in body
    assert 'href="/api/docs/"' in body
    assert f'href="{reverse("mfa_index")}"' in body
    assert 'href="/app/chat/"' in body


def test_app_home_in_english(tenant_world):
    tenant_world.web.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = tenant_world.web.get("/app/")

    assert html_root(response) == '<html lang="en" dir="ltr">'
    assert "Your store in the last 30 days" in response.content.decode()


def test_app_home_headline_is_the_selected_tenants_only(two_tenants):
    fill_store(two_tenants.a.tenant)

    response = two_tenants.b.web.get("/app/")

    assert "Beta Store" in response.content.decode()
    assert "متجر ألفا" not in response.content.decode()
    assert stat_values(response, "stat__value") == {
        "orders": "0",
        "revenue": "0.00 SAR",
        "stock-outs": "0",
        "products": "0",
    }


def test_app_home_sends_anonymous_users_to_login(client, db):
    response = client.get("/app/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/"


# --------------------------------------------------------------------------- tenant switch


def test_switching_to_another_users_tenant_is_404_and_changes_nothing(two_tenants):
    web = two_tenants.a.web
    second = TenantFactory(name="فرع جدة", slug="alpha-jeddah")
    MembershipFactory(user=two_tenants.a.owner, tenant=second)
    web.post(reverse("tenant-switch"), {"tenant": second.pk, "next": "/app/"})
    assert web.session[SESSION_TENANT_KEY] == second.pk

    response = web.post(reverse("tenant-switch"), {"tenant": two_tenants.b.tenant.pk, "next": "/app/"})

    assert response.status_code == 404
    assert web.session[SESSION_TENANT_KEY] == second.pk
    assert "Beta Store" not in page(web.get("/app/"))


def test_switching_to_the_users_second_tenant(two_tenants):
    web = two_tenants.a.web
    second = TenantFactory(name="فرع جدة", slug="alpha-jeddah")
    MembershipFactory(user=two_tenants.a.owner, tenant=second)
    before = page(web.get("/app/"))
    assert '<strong class="tenant-name">متجر ألفا</strong>' in before
    # With two memberships the header offers a switcher that returns to this page.
    assert f'<option value="{second.pk}">فرع جدة</option>' in before

    response = web.post(reverse("tenant-switch"), {"tenant": second.pk, "next": "/app/"})

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    assert web.session[SESSION_TENANT_KEY] == second.pk
    assert '<strong class="tenant-name">فرع جدة</strong>' in page(web.get("/app/"))


def test_tenant_switch_refuses_anonymous_users(client, two_tenants):
    response = client.post(reverse("tenant-switch"), {"tenant": two_tenants.a.tenant.pk})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert SESSION_TENANT_KEY not in client.session


# --------------------------------------------------------------------------- admin


def test_admin_index_shows_the_owners_headline_and_branding(tenant_world):
    fill_store(tenant_world.tenant)

    response = tenant_world.web.get("/admin/")

    assert response.status_code == 200
    body = page(response)
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    assert stat_values(response, "morvo-card__value") == {
        "orders": "4",
        "revenue": "1,350.50 SAR",
        "stock-outs": "2",
        "products": "6",
    }
    assert 'href="/static/morvo/admin.css"' in body
    assert 'href="/app/"' in body
    assert '<strong class="morvo-toolbar__tenant" id="morvo-tenant-switcher">متجر العطور</strong>' in body


def test_admin_index_headline_belongs_to_the_users_tenant(two_tenants):
    fill_store(two_tenants.a.tenant)

    response = two_tenants.b.web.get("/admin/")

    assert response.status_code == 200
    assert stat_values(response, "morvo-card__value")["orders"] == "0"
    assert "متجر ألفا" not in response.content.decode()


def test_admin_tenant_switcher_lists_only_the_users_tenants(two_tenants):
    second = TenantFactory(name="فرع جدة", slug="alpha-jeddah")
    MembershipFactory(user=two_tenants.a.owner, tenant=second)

    body = page(two_tenants.a.web.get("/admin/"))

    assert re.findall(r'<option value="(\d+)"', body) == [str(second.pk), str(two_tenants.a.tenant.pk)]
    assert '<input type="hidden" name="next" value="/admin/">' in body


def test_admin_sends_anonymous_users_to_the_accounts_login(client, db):
    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1] == ("/accounts/login/?next=/admin/", 302)
    assert response.status_code == 200


def test_admin_refuses_a_user_without_membership_with_the_no_access_page(client, db):
    user = UserFactory(email="lost@nowhere.test", username="lost@nowhere.test")
    client.force_login(user)

    response = client.get("/admin/", follow=True)

    assert response.status_code == 403
    body = page(response)
    assert html_root(response) == '<html lang="ar" dir="rtl">'
    assert "<h1>لا يمكنك الوصول إلى لوحة التحكم</h1>" in body
    assert "lost@nowhere.test" in body
    assert f'action="{reverse("account_logout")}"' in body
    assert signed_in_user_id(client) == str(user.pk)


def test_app_home_links_to_the_companion_chat(two_tenants):
    body = two_tenants.a.web.get("/app/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert 'href="/app/chat/"' in body
    assert "ابدأ محادثة جديدة" in body
