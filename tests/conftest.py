"""Shared fixtures. ``two_tenants`` makes every cross-tenant test one line:

def test_product_is_private(two_tenants):
    product = ProductFactory(tenant=two_tenants.a.tenant)
    two_tenants.assert_isolated(f"/api/v1/products/{product.pk}")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from morvo import services
from morvo.models import Membership, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory

os.environ.setdefault("HOME", "/tmp")  # noqa: S108  nothing in the suite may write into a real home


@dataclass
class TenantWorld:
    """One tenant with an owner, the owner's API token, and clients signed in as them."""

    tenant: Tenant
    owner: Any
    token: str
    api: APIClient = field(repr=False)
    web: Client = field(repr=False)

    def member(self, role: str) -> tuple[Any, str, APIClient]:
        """A new member with ``role``: (user, token key, API client)."""
        user = UserFactory()
        MembershipFactory(user=user, tenant=self.tenant, role=role)
        _, key = services.api_token_issue(user=user, tenant=self.tenant)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return user, key, client


def make_world(slug: str, name: str) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=name)
    owner = UserFactory(username=f"owner@{slug}.test", email=f"owner@{slug}.test")
    MembershipFactory(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    _, key = services.api_token_issue(user=owner, tenant=tenant, name="tests")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    web = Client()
    web.force_login(owner)
    return TenantWorld(tenant=tenant, owner=owner, token=key, api=api, web=web)


@dataclass
class TwoTenants:
    a: TenantWorld
    b: TenantWorld

    def assert_isolated(self, path: str, method: str = "get", data: Any = None) -> None:
        """``path`` names an object of tenant A: A reaches it, B gets exactly the 404 a
        missing object gets, and B's attempt changes nothing A can see."""
        own = getattr(self.a.api, method)(path, data, format="json") if data is not None else self.a.api.get(path)
        assert own.status_code != 404, f"tenant A cannot reach its own {path}: {own.status_code}"
        before = self.a.api.get(path).json() if method != "get" else None
        other = getattr(self.b.api, method)(path, data, format="json")
        assert other.status_code == 404, f"tenant B got {other.status_code} for A's {path}"
        assert other.json() == {"error": {"status": 404, "code": "not_found", "message": "Not found."}}
        if before is not None:
            assert self.a.api.get(path).json() == before, "tenant B's request changed A's object"


@pytest.fixture
def two_tenants(db: Any) -> TwoTenants:
    return TwoTenants(a=make_world("alpha", "متجر ألفا"), b=make_world("beta", "Beta Store"))


@pytest.fixture
def tenant_world(db: Any) -> TenantWorld:
    return make_world("solo", "متجر العطور")
