"""knowledge_search: hybrid retrieval, tenant isolation, global documents, filters, citations."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge import selectors, services
from knowledge.models import Chunk, Document
from knowledge.selectors import SearchHit, knowledge_search
from tests.knowledge.conftest import upload

RETURNS_AR = """# سياسة الاسترجاع

يمكن استرجاع المنتجات خلال 14 يوماً من الاستلام بشرط أن تكون في غلافها الأصلي.
"""
SHIPPING_EN = """# Shipping

Orders in Riyadh arrive within 24 hours. Shipping is free for orders over 300 SAR.
"""
SNAPCHAT_EN = """# Snapchat ads

Short vertical videos with Arabic captions work best on Snapchat in Saudi Arabia.
"""


@pytest.fixture
def library(two_tenants: Any) -> dict[str, Document]:
    return {
        "a_returns": upload(two_tenants.a.tenant, "returns.md", RETURNS_AR),
        "a_shipping": upload(two_tenants.a.tenant, "shipping.md", SHIPPING_EN),
        "b_secret": upload(two_tenants.b.tenant, "secret.md", "# Beta secret\n\nBeta's return window is 90 days."),
        "global": upload(None, "snapchat.md", SNAPCHAT_EN),
    }


def test_documents_are_ready_with_their_chunks(library: dict[str, Document]) -> None:
    document = library["a_returns"]
    assert (document.status, document.language, document.chunk_count) == ("ready", "ar", 1)
    chunk = Chunk.objects.for_tenant(document.tenant).get(document=document)
    assert chunk.embedding_model == "use-multilingual-v3"
    assert chunk.text == "يمكن استرجاع المنتجات خلال 14 يوماً من الاستلام بشرط أن تكون في غلافها الأصلي."
    assert chunk.heading == "سياسة الاسترجاع"


def test_arabic_question_finds_the_arabic_policy_first(two_tenants: Any, library: dict[str, Document]) -> None:
    hits = knowledge_search(two_tenants.a.tenant, "كم مدة الاسترجاع؟", k=3)

    assert hits[0].document_id == library["a_returns"].pk
    assert hits[0].title == "returns"
    assert hits[0].source == "returns.md"
    assert hits[0].position == 0
    assert hits[0].snippet.startswith("يمكن استرجاع المنتجات")
    assert isinstance(hits[0], SearchHit) and 0 < hits[0].score <= 1


def test_english_question_finds_the_arabic_document_across_languages(
    two_tenants: Any, library: dict[str, Document]
) -> None:
    hits = knowledge_search(two_tenants.a.tenant, "How many days do I have to return a product?", k=1)

    assert [hit.document_id for hit in hits] == [library["a_returns"].pk]


def test_global_documents_are_visible_to_every_tenant(two_tenants: Any, library: dict[str, Document]) -> None:
    for world in (two_tenants.a, two_tenants.b):
        hits = knowledge_search(world.tenant, "Snapchat video ads", k=1)
        assert [hit.document_id for hit in hits] == [library["global"].pk]


def test_another_tenants_documents_never_appear(two_tenants: Any, library: dict[str, Document]) -> None:
    hits = knowledge_search(two_tenants.a.tenant, "Beta secret return window 90 days", k=10)

    assert library["b_secret"].pk not in {hit.document_id for hit in hits}
    assert {hit.document_id for hit in hits} <= {
        library["a_returns"].pk,
        library["a_shipping"].pk,
        library["global"].pk,
    }
    own = knowledge_search(two_tenants.b.tenant, "Beta secret return window 90 days", k=1)
    assert [hit.document_id for hit in own] == [library["b_secret"].pk]


def test_filters_by_language_and_type(two_tenants: Any, library: dict[str, Document]) -> None:
    english = knowledge_search(two_tenants.a.tenant, "الشحن", k=10, language="en")
    assert {hit.language for hit in english} == {"en"}
    assert library["a_returns"].pk not in {hit.document_id for hit in english}
    assert knowledge_search(two_tenants.a.tenant, "shipping", k=10, document_types=["pdf"]) == []


def test_threshold_drops_weak_vector_matches(two_tenants: Any, library: dict[str, Document]) -> None:
    assert knowledge_search(two_tenants.a.tenant, "zzqx", k=5, threshold=0.99) == []


def test_blank_query_returns_nothing(two_tenants: Any, library: dict[str, Document]) -> None:
    assert knowledge_search(two_tenants.a.tenant, "   ", k=5) == []


def test_k_limits_the_results(two_tenants: Any, library: dict[str, Document]) -> None:
    assert len(knowledge_search(two_tenants.a.tenant, "shipping returns snapchat", k=2, threshold=0.0)) == 2


def test_keyword_side_matches_arabic_clitics_and_letter_forms(two_tenants: Any, library: dict[str, Document]) -> None:
    # "بالاسترجاع" (with the clitic) and "الإستلام" (hamza form) match "استرجاع" / "الاستلام".
    hits = selectors.knowledge_search_ranked(two_tenants.a.tenant, "بالاسترجاع الإستلام", k=1, mode="keyword")
    assert [hit.document_id for hit in hits] == [library["a_returns"].pk]


def test_vector_side_ignores_chunks_of_another_model(two_tenants: Any, library: dict[str, Document]) -> None:
    Chunk.objects.for_tenant(two_tenants.a.tenant).update(embedding_model="old-model")
    hits = selectors.knowledge_search_ranked(two_tenants.a.tenant, "return policy", k=5, mode="vector", threshold=-1.0)
    assert {hit.document_id for hit in hits} == {library["global"].pk}


def test_hits_cite_their_sources_once_per_document(two_tenants: Any, library: dict[str, Document]) -> None:
    hits = knowledge_search(two_tenants.a.tenant, "shipping to Riyadh", k=3, threshold=0.0)
    sources = selectors.hits_as_sources(hits)

    assert sources[0] == {
        "document_id": library["a_shipping"].pk,
        "title": "shipping",
        "source": "shipping.md",
        "position": 0,
        "score": round(hits[0].score, 4),
    }
    assert len(sources) == len({hit.document_id for hit in hits})


def test_search_needs_a_tenant(library: dict[str, Document]) -> None:
    with pytest.raises(ValueError):
        knowledge_search(None, "shipping")  # type: ignore[arg-type]


def test_unscoped_chunk_queries_refuse(library: dict[str, Document]) -> None:
    from morvo.tenancy import TenantScopeError

    with pytest.raises(TenantScopeError):
        list(Chunk.objects.filter(position=0))
    assert services  # the module under test is imported


def test_a_tenant_with_few_chunks_among_many_is_not_starved(two_tenants: Any) -> None:
    body = "\n\n".join(
        f"## Rule {index}\n\nShipping rule {index}: parcels leave the warehouse daily." for index in range(60)
    )
    upload(two_tenants.b.tenant, "many.md", body)
    own = upload(two_tenants.a.tenant, "one.md", "# Shipping\n\nParcels leave our warehouse every morning.")

    hits = knowledge_search(two_tenants.a.tenant, "when do parcels leave the warehouse", k=5)

    assert [hit.document_id for hit in hits] == [own.pk]


def test_terms_found_nearly_everywhere_are_left_out_of_the_keyword_side(monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "_estimated_rows", lambda cursor: {"shipping": 90_000.0, "policy": 6_000.0})

    assert selectors._informative(None, ["shipping", "riyadh", "policy"]) == ["riyadh"]
    assert selectors._informative(None, ["shipping", "policy"]) == ["policy"]  # all common: the rarest stays
    assert selectors._informative(None, []) == []
