"""``/api/v1/me`` and ``/api/v1/tenant``: bodies, roles, authentication (token and session),
the error format, and throttling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from morvo import services
from morvo.models import ApiToken, Membership, Tenant
from tests.factories import MembershipFactory, UserFactory

INVALID_TOKEN = {"error": {"status": 401, "code": "authentication_failed", "message": "Invalid or revoked token."}}
NOT_AUTHENTICATED = {
    "error": {"status": 401, "code": "not_authenticated", "message": "Authentication credentials were not provided."}
}
ROLE_CANNOT_CHANGE = {
    "error": {"status": 403, "code": "permission_denied", "message": "Your role in this tenant cannot change this."}
}
PROFILE_FIELDS = (
    "name",
    "business_type",
    "target_audience",
    "brand_voice",
    "default_language",
    "timezone",
    "currency",
    "primary_color",
)


@pytest.fixture(autouse=True)
def english_messages(settings):
    """Messages are asserted in English; the project's default language is Arabic, so the
    language a request falls back to (no Accept-Language header) is English here."""
    settings.LANGUAGE_CODE = "en"


def tenant_body(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.pk,
        "name": tenant.name,
        "slug": tenant.slug,
        "business_type": tenant.business_type,
        "target_audience": tenant.target_audience,
        "brand_voice": tenant.brand_voice,
        "default_language": tenant.default_language,
        "timezone": tenant.timezone,
        "currency": tenant.currency,
        "primary_color": tenant.primary_color,
        "created_at": timezone.localtime(tenant.created_at).isoformat(),
    }


def profile(tenant: Tenant) -> dict[str, Any]:
    """The tenant's stored profile, read fresh from the database."""
    fresh = Tenant.objects.get(pk=tenant.pk)
    return {"slug": fresh.slug, **{name: getattr(fresh, name) for name in PROFILE_FIELDS}}


def anonymous_client() -> APIClient:
    return APIClient()


# --- /api/v1/me ------------------------------------------------------------------------------


def test_me_returns_exactly_the_user_tenant_and_role(two_tenants):
    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": two_tenants.a.owner.pk, "email": "owner@alpha.test", "name": ""},
        "tenant": tenant_body(two_tenants.a.tenant),
        "role": "owner",
    }


def test_me_with_and_without_trailing_slash_answers_the_same(two_tenants):
    assert two_tenants.a.api.get("/api/v1/me/").json() == two_tenants.a.api.get("/api/v1/me").json()


def test_me_names_the_token_tenant_and_role_of_a_member_of_two_tenants(two_tenants):
    user = UserFactory(first_name="Sara", last_name="Al-Harbi", email="sara@example.com", username="sara")
    MembershipFactory(user=user, tenant=two_tenants.a.tenant, role=Membership.Role.VIEWER)
    MembershipFactory(user=user, tenant=two_tenants.b.tenant, role=Membership.Role.ADMIN)
    _, key_b = services.api_token_issue(user=user, tenant=two_tenants.b.tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key_b}")

    response = client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": user.pk, "email": "sara@example.com", "name": "Sara Al-Harbi"},
        "tenant": tenant_body(two_tenants.b.tenant),
        "role": "admin",
    }


def test_a_successful_call_records_when_the_token_was_last_used(two_tenants):
    token = ApiToken.objects.get(user=two_tenants.a.owner, tenant=two_tenants.a.tenant)
    assert token.last_used_at is None

    assert two_tenants.a.api.get("/api/v1/me").status_code == 200

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timezone.timedelta(minutes=1)


# --- GET /api/v1/tenant ----------------------------------------------------------------------


def test_tenant_get_returns_the_token_tenant_only(two_tenants):
    response_a = two_tenants.a.api.get("/api/v1/tenant")
    response_b = two_tenants.b.api.get("/api/v1/tenant/")

    assert response_a.status_code == 200
    assert response_a.json() == tenant_body(two_tenants.a.tenant)
    assert response_b.status_code == 200
    assert response_b.json() == tenant_body(two_tenants.b.tenant)


@pytest.mark.parametrize("role", ["viewer", "agent", "admin"])
def test_every_member_role_may_read_the_tenant(two_tenants, role):
    _, _, client = two_tenants.a.member(role)

    response = client.get("/api/v1/tenant")

    assert response.status_code == 200
    assert response.json() == tenant_body(two_tenants.a.tenant)


# --- PATCH /api/v1/tenant --------------------------------------------------------------------


def test_owner_patches_the_tenant_profile_and_it_is_stored(two_tenants):
    changes = {
        "name": "متجر ألفا للعطور",
        "brand_voice": "ودود ومختصر",
        "currency": "usd",
        "primary_color": "#112233",
        "timezone": "Asia/Dubai",
        "default_language": "en",
    }

    response = two_tenants.a.api.patch("/api/v1/tenant", changes, format="json")

    assert response.status_code == 200
    tenant = Tenant.objects.get(pk=two_tenants.a.tenant.pk)
    assert response.json() == tenant_body(tenant)
    assert profile(tenant) == {
        "slug": "alpha",
        "name": "متجر ألفا للعطور",
        "business_type": "retail",
        "target_audience": "",
        "brand_voice": "ودود ومختصر",
        "default_language": "en",
        "timezone": "Asia/Dubai",
        "currency": "USD",  # normalised to upper case
        "primary_color": "#112233",
    }
    assert profile(two_tenants.b.tenant)["name"] == "Beta Store"


def test_admin_may_patch_the_tenant(two_tenants):
    _, _, admin = two_tenants.a.member("admin")

    response = admin.patch("/api/v1/tenant", {"target_audience": "نساء ٢٥-٤٠"}, format="json")

    assert response.status_code == 200
    assert response.json()["target_audience"] == "نساء ٢٥-٤٠"
    assert Tenant.objects.get(pk=two_tenants.a.tenant.pk).target_audience == "نساء ٢٥-٤٠"


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_viewer_and_agent_cannot_patch_the_tenant(two_tenants, role):
    _, _, client = two_tenants.a.member(role)
    before = profile(two_tenants.a.tenant)

    response = client.patch("/api/v1/tenant", {"name": "Hijacked", "currency": "EUR"}, format="json")

    assert response.status_code == 403
    assert response.json() == ROLE_CANNOT_CHANGE
    assert profile(two_tenants.a.tenant) == before


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"currency": "US"}, {"currency": ["Use a three-letter ISO 4217 code, such as SAR."]}),
        ({"currency": "U5D"}, {"currency": ["Use a three-letter ISO 4217 code, such as SAR."]}),
        ({"primary_color": "red"}, {"primary_color": ["Use a colour like #0f766e."]}),
        ({"primary_color": "#12345g"}, {"primary_color": ["Use a colour like #0f766e."]}),
        ({"timezone": "Mars/Olympus"}, {"timezone": ["Unknown time zone: Mars/Olympus"]}),
        (
            {"timezone": "Asia/Dubai", "primary_color": "#zzzzzz"},
            {"primary_color": ["Use a colour like #0f766e."]},
        ),
    ],
)
def test_invalid_tenant_values_are_400_with_fields_and_nothing_changes(two_tenants, changes, fields):
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch("/api/v1/tenant", changes, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"status": 400, "code": "invalid", "message": "Invalid input.", "fields": fields}
    }
    assert profile(two_tenants.a.tenant) == before


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"slug": "hijacked"}, ["slug"]),
        ({"id": 999}, ["id"]),
        ({"created_at": "2020-01-01T00:00:00Z"}, ["created_at"]),
        ({"is_active": False}, ["is_active"]),
        ({"plan": "enterprise", "name": "New name"}, ["plan"]),
        ({"slug": "x", "name": "New name", "owner": 1}, ["owner", "slug"]),
    ],
)
def test_unknown_or_read_only_tenant_fields_are_400_and_nothing_changes(two_tenants, changes, refused):
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch("/api/v1/tenant", changes, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "status": 400,
            "code": "invalid",
            "message": "Invalid input.",
            "fields": {name: ["This field cannot be written."] for name in refused},
        }
    }
    assert profile(two_tenants.a.tenant) == before
    assert Tenant.objects.get(pk=two_tenants.a.tenant.pk).is_active is True


def test_malformed_json_body_is_400_in_the_error_format_and_nothing_changes(two_tenants):
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch("/api/v1/tenant", data='{"name": "x",', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == 400
    assert body["error"]["code"] == "parse_error"
    assert body["error"]["message"].startswith("JSON parse error - ")
    assert len(body["error"]["message"]) > len("JSON parse error - ")
    assert profile(two_tenants.a.tenant) == before


def test_a_json_body_that_is_not_an_object_is_400_and_nothing_changes(two_tenants):
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch("/api/v1/tenant", data='["name"]', content_type="application/json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (400, "invalid")
    assert profile(two_tenants.a.tenant) == before


def test_a_form_encoded_patch_is_415_and_nothing_changes(two_tenants):
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch(
        "/api/v1/tenant", data="name=Hijacked", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert profile(two_tenants.a.tenant) == before


def test_tenant_b_token_patches_only_tenant_b(two_tenants):
    before_a = profile(two_tenants.a.tenant)

    response = two_tenants.b.api.patch("/api/v1/tenant", {"name": "Beta Perfumes"}, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == two_tenants.b.tenant.pk
    assert profile(two_tenants.b.tenant)["name"] == "Beta Perfumes"
    assert profile(two_tenants.a.tenant) == before_a


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_tenant_other_methods_are_405_and_nothing_changes(two_tenants, method):
    before = profile(two_tenants.a.tenant)

    response = getattr(two_tenants.a.api, method)("/api/v1/tenant", {"name": "x"}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert Tenant.objects.filter(pk=two_tenants.a.tenant.pk).exists()
    assert profile(two_tenants.a.tenant) == before


# --- token authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/tenant"])
def test_no_credentials_is_401_with_www_authenticate_token(db, path):
    response = anonymous_client().get(path)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == NOT_AUTHENTICATED


def test_error_messages_are_arabic_without_a_language_preference(db, settings):
    settings.LANGUAGE_CODE = "ar"  # the project's default (overridden to English in this module)

    missing = anonymous_client().get("/api/v1/me")

    assert (missing.status_code, missing.headers["Content-Language"]) == (401, "ar")
    assert missing.json() == {
        "error": {"status": 401, "code": "not_authenticated", "message": "لم يتم تزويد بيانات الدخول."}
    }


def test_english_is_used_when_the_caller_asks_for_it(db, settings):
    settings.LANGUAGE_CODE = "ar"

    response = anonymous_client().get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="en")

    assert response.headers["Content-Language"] == "en"
    assert response.json() == NOT_AUTHENTICATED


def test_anonymous_patch_is_401_and_nothing_changes(two_tenants):
    before = profile(two_tenants.a.tenant)

    response = anonymous_client().patch("/api/v1/tenant", {"name": "x"}, format="json")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert profile(two_tenants.a.tenant) == before


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Token", "Invalid token header: expected 'Token <key>'."),
        ("Token   ", "Invalid token header: expected 'Token <key>'."),
        ("Token two parts", "Invalid token header: expected 'Token <key>'."),
        ("Token \xe9\xe9\xe9", "Invalid token header."),
    ],
)
def test_malformed_token_header_is_401(two_tenants, header, message):
    response = anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == {"error": {"status": 401, "code": "authentication_failed", "message": message}}


def test_other_auth_scheme_is_treated_as_no_credentials(two_tenants):
    response = anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {two_tenants.a.token}")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_keyword_is_case_insensitive(two_tenants):
    response = anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"token {two_tenants.a.token}")

    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "alpha"


@pytest.mark.parametrize("key_of", ["wrong", "truncated", "other_case"])
def test_wrong_key_is_401(two_tenants, key_of):
    real = two_tenants.a.token
    key = {"wrong": "mv_" + "x" * 43, "truncated": real[:-1], "other_case": real.swapcase()}[key_of]

    response = anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == INVALID_TOKEN


def test_revoked_token_is_401_and_a_new_token_works(two_tenants):
    token = ApiToken.objects.get(user=two_tenants.a.owner, tenant=two_tenants.a.tenant)
    services.api_token_revoke(token)

    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    _, fresh_key = services.api_token_issue(user=two_tenants.a.owner, tenant=two_tenants.a.tenant)
    assert anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {fresh_key}").status_code == 200


def test_revoked_token_cannot_patch(two_tenants):
    before = profile(two_tenants.a.tenant)
    services.api_token_revoke(ApiToken.objects.get(user=two_tenants.a.owner, tenant=two_tenants.a.tenant))

    response = two_tenants.a.api.patch("/api/v1/tenant", {"name": "x"}, format="json")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert profile(two_tenants.a.tenant) == before


def test_token_of_a_user_whose_membership_was_deleted_is_401(two_tenants):
    Membership.objects.filter(user=two_tenants.a.owner, tenant=two_tenants.a.tenant).delete()

    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert ApiToken.objects.filter(user=two_tenants.a.owner, tenant=two_tenants.a.tenant).count() == 1


def test_token_of_a_member_of_another_tenant_does_not_follow_the_user(two_tenants):
    """The membership that counts is the token's tenant's, not any membership of the user."""
    MembershipFactory(user=two_tenants.a.owner, tenant=two_tenants.b.tenant, role=Membership.Role.OWNER)
    Membership.objects.filter(user=two_tenants.a.owner, tenant=two_tenants.a.tenant).delete()

    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


def test_token_of_an_inactive_tenant_is_401(two_tenants):
    Tenant.objects.filter(pk=two_tenants.a.tenant.pk).update(is_active=False)

    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert two_tenants.b.api.get("/api/v1/me").status_code == 200


def test_token_of_an_inactive_user_is_401(two_tenants):
    get_user_model().objects.filter(pk=two_tenants.a.owner.pk).update(is_active=False)

    response = two_tenants.a.api.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


def test_a_downgraded_role_applies_to_an_existing_token(two_tenants):
    Membership.objects.filter(user=two_tenants.a.owner, tenant=two_tenants.a.tenant).update(role="viewer")
    before = profile(two_tenants.a.tenant)

    assert two_tenants.a.api.get("/api/v1/me").json()["role"] == "viewer"
    response = two_tenants.a.api.patch("/api/v1/tenant", {"name": "x"}, format="json")

    assert response.status_code == 403
    assert response.json() == ROLE_CANNOT_CHANGE
    assert profile(two_tenants.a.tenant) == before


# --- session authentication ------------------------------------------------------------------


def test_signed_in_session_can_get_me(two_tenants):
    response = two_tenants.a.web.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": two_tenants.a.owner.pk, "email": "owner@alpha.test", "name": ""},
        "tenant": tenant_body(two_tenants.a.tenant),
        "role": "owner",
    }


def test_session_unsafe_request_without_csrf_token_is_403_and_nothing_changes(two_tenants):
    client = Client(enforce_csrf_checks=True)
    client.force_login(two_tenants.a.owner)
    before = profile(two_tenants.a.tenant)

    response = client.patch("/api/v1/tenant", data=json.dumps({"name": "Hijacked"}), content_type="application/json")

    assert response.status_code == 403
    assert response.json() == {
        "error": {"status": 403, "code": "permission_denied", "message": "CSRF Failed: CSRF cookie not set."}
    }
    assert profile(two_tenants.a.tenant) == before


def test_session_unsafe_request_with_csrf_token_is_accepted(two_tenants):
    """The positive control of the test above: the refusal was about CSRF, not the session."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(two_tenants.a.owner)
    secret = "a" * 32
    client.cookies["csrftoken"] = secret

    response = client.patch(
        "/api/v1/tenant",
        data=json.dumps({"name": "Alpha by session"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=secret,
    )

    assert response.status_code == 200
    assert profile(two_tenants.a.tenant)["name"] == "Alpha by session"


def test_session_works_in_the_selected_tenant(two_tenants):
    MembershipFactory(user=two_tenants.a.owner, tenant=two_tenants.b.tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(two_tenants.a.owner)

    assert client.get("/api/v1/me").json()["tenant"]["slug"] == "alpha"
    switched = client.post("/app/tenant/switch/", {"tenant": two_tenants.b.tenant.pk})
    assert switched.status_code == 302

    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert (response.json()["tenant"]["slug"], response.json()["role"]) == ("beta", "viewer")


def test_signed_in_user_without_a_membership_is_401(db):
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_session_viewer_cannot_patch_even_with_csrf(two_tenants):
    viewer, _, _ = two_tenants.a.member("viewer")
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    client.cookies["csrftoken"] = "b" * 32
    before = profile(two_tenants.a.tenant)

    response = client.patch(
        "/api/v1/tenant", data=json.dumps({"name": "x"}), content_type="application/json", HTTP_X_CSRFTOKEN="b" * 32
    )

    assert response.status_code == 403
    assert response.json() == ROLE_CANNOT_CHANGE
    assert profile(two_tenants.a.tenant) == before


# --- throttling ------------------------------------------------------------------------------


@pytest.fixture
def frozen_throttle_clock(monkeypatch):
    """Every throttle sees the same instant, so ``Retry-After`` is exactly the window."""
    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: 1_800_000_000.0))


def set_rates(settings, *, token: str = "100000/min", ip: str = "100000/min") -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": token, "ip": ip}}


def assert_throttled(response, wait: int = 60) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(wait)
    assert response.json() == {
        "error": {
            "status": 429,
            "code": "throttled",
            "message": f"Request was throttled. Expected available in {wait} seconds.",
            "retry_after": str(wait),
        }
    }


def test_token_throttle_answers_429_on_the_fourth_call(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, token="3/min")

    statuses = [two_tenants.a.api.get("/api/v1/me").status_code for _ in range(3)]
    fourth = two_tenants.a.api.get("/api/v1/me")

    assert statuses == [200, 200, 200]
    assert_throttled(fourth)


def test_token_throttle_counts_per_token(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, token="2/min")
    _, _, second_client_of_a = two_tenants.a.member("viewer")

    statuses_a = [two_tenants.a.api.get("/api/v1/tenant").status_code for _ in range(3)]
    statuses_b = [two_tenants.b.api.get("/api/v1/tenant").status_code for _ in range(2)]
    statuses_second = [second_client_of_a.get("/api/v1/tenant").status_code for _ in range(2)]

    assert statuses_a == [200, 200, 429]
    assert statuses_b == [200, 200]
    assert statuses_second == [200, 200]


def test_a_throttled_patch_changes_nothing(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, token="3/min")
    for _ in range(3):
        assert two_tenants.a.api.get("/api/v1/tenant").status_code == 200
    before = profile(two_tenants.a.tenant)

    response = two_tenants.a.api.patch("/api/v1/tenant", {"name": "Too fast"}, format="json")

    assert_throttled(response)
    assert profile(two_tenants.a.tenant) == before


def test_session_callers_are_throttled_per_user(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, token="2/min")

    statuses = [two_tenants.a.web.get("/api/v1/me").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_ip_throttle_applies_to_authenticated_callers_of_every_token(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, ip="2/min")

    first = two_tenants.a.api.get("/api/v1/me")
    second = two_tenants.b.api.get("/api/v1/me")
    third = two_tenants.a.api.get("/api/v1/me")
    other_address = two_tenants.a.api.get("/api/v1/me", REMOTE_ADDR="203.0.113.9")

    assert (first.status_code, second.status_code) == (200, 200)
    assert_throttled(third)
    assert other_address.status_code == 200


def test_ip_throttle_applies_to_anonymous_callers(db, settings, frozen_throttle_clock):
    """Refused callers are counted too: otherwise keys could be guessed at full speed."""
    cache.clear()
    set_rates(settings, ip="2/min")
    client = anonymous_client()

    statuses = [client.get("/api/v1/me").status_code for _ in range(2)]
    third = client.get("/api/v1/me")

    assert statuses == [401, 401]
    assert_throttled(third)


def test_ip_throttle_applies_to_wrong_keys(db, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, ip="2/min")

    statuses = [
        anonymous_client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token mv_guess{attempt}").status_code
        for attempt in range(3)
    ]

    assert statuses == [401, 401, 429]


def test_anonymous_calls_count_against_the_address_of_a_later_token_call(two_tenants, settings, frozen_throttle_clock):
    cache.clear()
    set_rates(settings, ip="2/min")
    before = profile(two_tenants.a.tenant)

    refused = [anonymous_client().get("/api/v1/tenant").status_code for _ in range(2)]
    response = two_tenants.a.api.patch("/api/v1/tenant", {"name": "x"}, format="json")

    assert refused == [401, 401]
    assert_throttled(response)
    assert profile(two_tenants.a.tenant) == before
