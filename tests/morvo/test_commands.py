from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from morvo.models import ApiToken, Membership, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory


def _counts():
    return (Tenant.objects.count(), get_user_model().objects.count(), Membership.objects.count())


def test_create_tenant_prints_a_password_that_signs_the_owner_in(db):
    out = StringIO()
    call_command(
        "create_tenant",
        "rose-shop",
        "owner@rose.test",
        "--name",
        "متجر الورد",
        "--business-type",
        "beauty_salon",
        "--language",
        "en",
        stdout=out,
    )
    last_line = out.getvalue().splitlines()[-1]
    assert last_line.startswith("Password: ")
    password = last_line.removeprefix("Password: ")
    owner = authenticate(username="owner@rose.test", password=password)
    assert owner is not None
    assert owner.email == "owner@rose.test"
    tenant = Tenant.objects.get(slug="rose-shop")
    assert (tenant.name, tenant.business_type, tenant.default_language) == ("متجر الورد", "beauty_salon", "en")
    assert list(Membership.objects.filter(tenant=tenant).values_list("user", "role")) == [(owner.pk, "owner")]


def test_create_tenant_defaults_the_name_to_the_slug(db):
    call_command("create_tenant", "plain-shop", "owner@plain.test", stdout=StringIO())
    tenant = Tenant.objects.get(slug="plain-shop")
    assert (tenant.name, tenant.business_type, tenant.default_language) == ("plain-shop", "general", "ar")


def test_create_tenant_with_a_taken_slug_writes_nothing(db):
    TenantFactory(slug="taken")
    before = _counts()
    with pytest.raises(CommandError, match="slug 'taken' already exists"):
        call_command("create_tenant", "taken", "new-owner@example.test", stdout=StringIO())
    assert _counts() == before
    assert not get_user_model().objects.filter(email="new-owner@example.test").exists()


def test_create_tenant_with_a_taken_email_writes_nothing(db):
    UserFactory(username="someone@example.test", email="someone@example.test")
    before = _counts()
    with pytest.raises(CommandError, match=r"A user with the e-mail Someone@Example\.test already exists\."):
        call_command("create_tenant", "fresh-shop", "Someone@Example.test", stdout=StringIO())
    assert _counts() == before
    assert not Tenant.objects.filter(slug="fresh-shop").exists()


@pytest.mark.parametrize("slug", ["My Shop", "UPPER", "متجر", "-"])
def test_create_tenant_with_an_invalid_slug_writes_nothing(db, slug):
    before = _counts()
    with pytest.raises(CommandError, match="Invalid slug"):
        call_command("create_tenant", slug, "owner@invalid.test", stdout=StringIO())
    assert _counts() == before


def test_create_tenant_with_an_invalid_email_writes_nothing(db):
    before = _counts()
    with pytest.raises(CommandError, match="Invalid e-mail"):
        call_command("create_tenant", "mail-shop", "not-an-email", stdout=StringIO())
    assert _counts() == before


def test_issue_api_token_last_line_is_a_key_that_authenticates(db):
    tenant = TenantFactory(slug="oud-house")
    user = UserFactory(username="staff@oud.test", email="staff@oud.test")
    MembershipFactory(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    out = StringIO()
    call_command("issue_api_token", "oud-house", "staff@oud.test", "--name", "zapier", stdout=out)
    key = out.getvalue().splitlines()[-1]
    assert key.startswith("mv_")
    assert " " not in key

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "oud-house"
    assert response.json()["role"] == "admin"
    token = ApiToken.objects.get()
    assert (token.user, token.tenant, token.name, token.key_prefix) == (user, tenant, "zapier", key[:10])


def test_issue_api_token_for_a_non_member_writes_nothing(db):
    TenantFactory(slug="oud-house")
    other = TenantFactory(slug="elsewhere")
    user = UserFactory(username="outsider@oud.test", email="outsider@oud.test")
    MembershipFactory(user=user, tenant=other)
    with pytest.raises(CommandError, match="not a member of oud-house"):
        call_command("issue_api_token", "oud-house", "outsider@oud.test", stdout=StringIO())
    assert ApiToken.objects.count() == 0


def test_issue_api_token_for_an_unknown_tenant_writes_nothing(db):
    UserFactory(username="staff@oud.test", email="staff@oud.test")
    with pytest.raises(CommandError, match="No tenant with the slug 'missing'"):
        call_command("issue_api_token", "missing", "staff@oud.test", stdout=StringIO())
    assert ApiToken.objects.count() == 0


def test_issue_api_token_for_an_unknown_user_writes_nothing(db):
    TenantFactory(slug="oud-house")
    with pytest.raises(CommandError, match=r"No user with the e-mail nobody@oud\.test"):
        call_command("issue_api_token", "oud-house", "nobody@oud.test", stdout=StringIO())
    assert ApiToken.objects.count() == 0
