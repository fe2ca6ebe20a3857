"""Knowledge uploads in the back office: scoped lists, 404 for other tenants, upload, roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Document
from morvo.models import Membership
from tests.factories import UserFactory
from tests.knowledge.conftest import upload


@pytest.fixture(autouse=True)
def english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def documents(two_tenants: Any) -> dict[str, Document]:
    return {
        "a": upload(two_tenants.a.tenant, "a.md", "# A\n\nWithin 14 days.", title="Alpha returns"),
        "b": upload(two_tenants.b.tenant, "b.md", "# B\n\nBeta only.", title="Beta secret"),
        "global": upload(None, "r.md", "# R\n\nPlan early.", title="Ramadan library"),
    }


def test_list_shows_only_the_selected_tenants_documents(two_tenants: Any, documents: dict[str, Document]) -> None:
    response = two_tenants.a.web.get("/admin/knowledge/document/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Alpha returns" in body
    assert "Beta secret" not in body
    assert "Ramadan library" not in body


def test_another_tenants_document_is_404_like_a_missing_one(two_tenants: Any, documents: dict[str, Document]) -> None:
    for suffix in ("change/", "delete/"):
        assert two_tenants.a.web.get(f"/admin/knowledge/document/{documents['b'].pk}/{suffix}").status_code == 404
        assert two_tenants.a.web.get(f"/admin/knowledge/document/999999/{suffix}").status_code == 404
    response = two_tenants.a.web.post(f"/admin/knowledge/document/{documents['b'].pk}/delete/", {"post": "yes"})
    assert response.status_code == 404
    assert Document.objects.for_tenant(two_tenants.b.tenant).count() == 1


def test_document_page_shows_status_and_chunks(two_tenants: Any, documents: dict[str, Document]) -> None:
    response = two_tenants.a.web.get(f"/admin/knowledge/document/{documents['a'].pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Within 14 days." in body
    assert "Ready" in body


def test_upload_in_the_admin_creates_a_pending_document_of_the_tenant(
    two_tenants: Any, ingest_inline: list[Any]
) -> None:
    response = two_tenants.a.web.post(
        "/admin/knowledge/document/add/",
        {
            "file": SimpleUploadedFile("faq.md", b"# FAQ\n\nWe ship across the Gulf."),
            "title": "Store FAQ",
            "region": "",
        },
    )

    assert response.status_code == 302
    document = Document.objects.for_tenant(two_tenants.a.tenant).get()
    assert (document.title, document.source, document.status, document.chunk_count) == (
        "Store FAQ",
        "faq.md",
        "ready",
        1,
    )
    assert ingest_inline == [(two_tenants.a.tenant.pk, document.pk)]
    assert not Document.objects.for_tenant(two_tenants.b.tenant).exists()


def test_unsupported_upload_in_the_admin_is_a_form_error(two_tenants: Any, ingest_inline: list[Any]) -> None:
    response = two_tenants.a.web.post(
        "/admin/knowledge/document/add/", {"file": SimpleUploadedFile("photo.png", b"\x89PNG"), "title": ""}
    )

    assert response.status_code == 200
    assert "Unsupported file type" in response.content.decode()
    assert not Document.objects.for_tenant(two_tenants.a.tenant).exists()
    assert ingest_inline == []


def test_viewer_cannot_upload(two_tenants: Any) -> None:
    viewer = UserFactory()
    Membership.objects.create(user=viewer, tenant=two_tenants.a.tenant, role=Membership.Role.VIEWER)
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/knowledge/document/").status_code == 200
    response = client.post("/admin/knowledge/document/add/", {"file": SimpleUploadedFile("a.md", b"# A\n\nB")})
    assert response.status_code == 403
    assert not Document.objects.for_tenant(two_tenants.a.tenant).exists()


def test_superuser_sees_the_global_library_read_only_for_members(
    two_tenants: Any, documents: dict[str, Document]
) -> None:
    from django.test import Client

    root = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    body = client.get("/admin/knowledge/document/").content.decode()
    assert "Ramadan library" in body and "Beta secret" in body and "Alpha returns" in body
    # A member cannot open a global document in the admin at all.
    assert two_tenants.a.web.get(f"/admin/knowledge/document/{documents['global'].pk}/change/").status_code == 404


def test_reprocess_action_only_touches_failed_documents_of_the_tenant(
    two_tenants: Any, ingest_inline: list[Any]
) -> None:
    failed = upload(two_tenants.a.tenant, "broken.pdf", b"%PDF-1.4 broken")
    ready = upload(two_tenants.a.tenant, "ok.md", "# OK\n\nFine.")
    ingest_inline.clear()

    response = two_tenants.a.web.post(
        "/admin/knowledge/document/",
        {"action": "reprocess_failed", "_selected_action": [failed.pk, ready.pk]},
    )

    assert response.status_code == 302
    assert ingest_inline == [(two_tenants.a.tenant.pk, failed.pk)]
