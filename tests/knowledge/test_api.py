"""The knowledge API: upload, list, retrieve with status, delete, search; its error cases."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from knowledge.models import Chunk, Document
from morvo.models import Membership
from tests.knowledge.conftest import upload

POLICY = "# Returns\n\nReturns are accepted within 14 days of delivery with the receipt.\n"


def _post(client: Any, name: str, content: bytes, content_type: str = "text/markdown", **data: Any) -> Any:
    return client.post(
        "/api/v1/knowledge/documents",
        {"file": SimpleUploadedFile(name, content, content_type=content_type), **data},
        format="multipart",
    )


@pytest.fixture(autouse=True)
def english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def test_upload_is_ingested_and_searchable(two_tenants: Any, ingest_inline: list[Any]) -> None:
    response = _post(two_tenants.a.api, "returns.md", POLICY.encode(), title="Returns policy")

    assert response.status_code == 201
    body = response.json()
    assert (body["title"], body["source"], body["document_type"], body["is_global"]) == (
        "Returns policy",
        "returns.md",
        "markdown",
        False,
    )
    assert ingest_inline == [(two_tenants.a.tenant.pk, body["id"])]
    detail = two_tenants.a.api.get(f"/api/v1/knowledge/documents/{body['id']}").json()
    assert (detail["status"], detail["chunk_count"], detail["language"], detail["failure_reason"]) == (
        "ready",
        1,
        "en",
        "",
    )
    search = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "كم يوم عندي لإرجاع المنتج؟", "k": 3})
    assert search.status_code == 200
    result = search.json()
    assert result["query"] == "كم يوم عندي لإرجاع المنتج؟"
    assert result["results"][0]["document_id"] == body["id"]
    assert result["results"][0]["snippet"] == "Returns are accepted within 14 days of delivery with the receipt."
    assert result["count"] == len(result["results"])


def test_the_same_content_again_is_not_duplicated(two_tenants: Any, ingest_inline: list[Any]) -> None:
    first = _post(two_tenants.a.api, "returns.md", POLICY.encode())
    again = _post(two_tenants.a.api, "copy-of-returns.md", POLICY.encode(), title="Copy")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 1
    assert len(ingest_inline) == 1
    # Another business uploading the same bytes gets its own document.
    assert _post(two_tenants.b.api, "returns.md", POLICY.encode()).status_code == 201


def test_unsupported_type_is_415_and_writes_nothing(two_tenants: Any, ingest_inline: list[Any]) -> None:
    response = _post(two_tenants.a.api, "image.png", b"\x89PNG\r\n", content_type="image/png")

    assert response.status_code == 415
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (415, "unsupported_file_type")
    assert ".pdf" in error["message"]
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 0
    assert ingest_inline == []


@override_settings(KNOWLEDGE_MAX_UPLOAD_BYTES=100)
def test_over_the_size_limit_is_413_and_writes_nothing(two_tenants: Any, ingest_inline: list[Any]) -> None:
    response = _post(two_tenants.a.api, "big.txt", b"x" * 101, content_type="text/plain")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 0
    assert ingest_inline == []
    assert _post(two_tenants.a.api, "small.txt", b"x" * 100, content_type="text/plain").status_code == 201


@override_settings(KNOWLEDGE_MAX_UPLOAD_BYTES=1000)
def test_a_body_declared_far_over_the_limit_is_refused_before_parsing(two_tenants: Any) -> None:
    response = _post(two_tenants.a.api, "big.txt", b"x" * 70_000, content_type="text/plain")

    assert response.status_code == 413
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 0


def test_corrupt_pdf_fails_with_the_reason_and_nothing_is_searchable(
    two_tenants: Any, ingest_inline: list[Any]
) -> None:
    response = _post(
        two_tenants.a.api, "broken.pdf", b"%PDF-1.7\nthis is not a real pdf body", content_type="application/pdf"
    )

    assert response.status_code == 201
    detail = two_tenants.a.api.get(f"/api/v1/knowledge/documents/{response.json()['id']}").json()
    assert detail["status"] == "failed"
    assert detail["failure_reason"].startswith("The PDF file is damaged or unreadable.")
    assert detail["chunk_count"] == 0
    assert Chunk.objects.for_tenant(two_tenants.a.tenant).count() == 0
    assert two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "real pdf body"}).json()["results"] == []


def test_failure_reason_is_translated(two_tenants: Any, ingest_inline: list[Any]) -> None:
    document_id = _post(two_tenants.a.api, "broken.pdf", b"not a pdf", content_type="application/pdf").json()["id"]

    detail = two_tenants.a.api.get(f"/api/v1/knowledge/documents/{document_id}", HTTP_ACCEPT_LANGUAGE="ar").json()
    assert detail["failure_reason"].startswith("ملف PDF تالف")


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_400(two_tenants: Any, query: str) -> None:
    response = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": query})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("invalid", ["q"])


def test_missing_query_and_bad_k_are_400(two_tenants: Any) -> None:
    assert two_tenants.a.api.get("/api/v1/knowledge/search").status_code == 400
    response = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "shipping", "k": 500})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["k"]


def test_search_filters_by_type_and_language(two_tenants: Any) -> None:
    upload(two_tenants.a.tenant, "returns.md", POLICY)
    upload(two_tenants.a.tenant, "rows.csv", "question,answer\nreturn window,14 days from delivery\n")

    only_csv = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "return window", "type": "csv"}).json()
    assert {hit["document_type"] for hit in only_csv["results"]} == {"csv"}
    arabic = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "return window", "language": "ar"}).json()
    assert arabic["results"] == []
    bad = two_tenants.a.api.get("/api/v1/knowledge/search", {"q": "return", "type": "exe"})
    assert bad.status_code == 400


def test_another_tenants_document_is_404(two_tenants: Any) -> None:
    document = upload(two_tenants.a.tenant, "returns.md", POLICY)

    two_tenants.assert_isolated(f"/api/v1/knowledge/documents/{document.pk}")
    response = two_tenants.b.api.delete(f"/api/v1/knowledge/documents/{document.pk}")
    assert response.status_code == 404
    assert Document.objects.for_tenant(two_tenants.a.tenant).filter(pk=document.pk).exists()
    assert two_tenants.b.api.get("/api/v1/knowledge/documents").json()["count"] == 0


def test_another_tenants_document_is_absent_from_search(two_tenants: Any) -> None:
    upload(two_tenants.a.tenant, "returns.md", POLICY)

    response = two_tenants.b.api.get("/api/v1/knowledge/search", {"q": "returns accepted within 14 days"})
    assert response.json() == {"query": "returns accepted within 14 days", "count": 0, "results": []}


def test_list_shows_own_and_global_documents(two_tenants: Any) -> None:
    own = upload(two_tenants.a.tenant, "returns.md", POLICY)
    library = upload(None, "ramadan.md", "# Ramadan\n\nPlan campaigns early.")
    upload(two_tenants.b.tenant, "other.md", "# Other\n\nNot yours.")

    listed = two_tenants.a.api.get("/api/v1/knowledge/documents").json()
    assert sorted((row["id"], row["is_global"]) for row in listed["results"]) == sorted(
        [(own.pk, False), (library.pk, True)]
    )
    assert [row["id"] for row in two_tenants.a.api.get("/api/v1/knowledge/documents?scope=own").json()["results"]] == [
        own.pk
    ]
    assert [
        row["id"] for row in two_tenants.a.api.get("/api/v1/knowledge/documents?scope=global").json()["results"]
    ] == [library.pk]


def test_delete_removes_the_document_and_its_chunks(two_tenants: Any) -> None:
    document = upload(two_tenants.a.tenant, "returns.md", POLICY)

    response = two_tenants.a.api.delete(f"/api/v1/knowledge/documents/{document.pk}")

    assert response.status_code == 204
    assert not Document.objects.for_tenant(two_tenants.a.tenant).exists()
    assert not Chunk.objects.for_tenant(two_tenants.a.tenant).exists()


def test_global_documents_cannot_be_deleted_through_the_api(two_tenants: Any) -> None:
    library = upload(None, "ramadan.md", "# Ramadan\n\nPlan campaigns early.")

    response = two_tenants.a.api.delete(f"/api/v1/knowledge/documents/{library.pk}")

    assert response.status_code == 403
    assert Document.objects.global_only().filter(pk=library.pk).exists()


def test_anonymous_callers_are_refused(db: Any) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.get("/api/v1/knowledge/search", {"q": "x"}).status_code == 401
    assert client.get("/api/v1/knowledge/documents").status_code == 401
    assert _post(client, "a.md", b"# A\n\nB").status_code == 401
    assert Document.objects.all_tenants().count() == 0


def test_viewers_search_but_cannot_upload_or_delete(two_tenants: Any) -> None:
    document = upload(two_tenants.a.tenant, "returns.md", POLICY)
    _, _, viewer = two_tenants.a.member(Membership.Role.VIEWER)

    assert viewer.get("/api/v1/knowledge/search", {"q": "returns"}).status_code == 200
    assert _post(viewer, "new.md", b"# New\n\nText").status_code == 403
    assert viewer.delete(f"/api/v1/knowledge/documents/{document.pk}").status_code == 403
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 1


def test_upload_needs_multipart_and_a_file(two_tenants: Any) -> None:
    as_json = two_tenants.a.api.post("/api/v1/knowledge/documents", {"title": "x"}, format="json")
    assert as_json.status_code == 415
    no_file = two_tenants.a.api.post("/api/v1/knowledge/documents", {"title": "x"}, format="multipart")
    assert no_file.status_code == 400
    assert list(no_file.json()["error"]["fields"]) == ["file"]
    unknown = _post(two_tenants.a.api, "a.md", b"# A\n\nB", colour="red")
    assert unknown.status_code == 400
    assert list(unknown.json()["error"]["fields"]) == ["colour"]
    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == 0
