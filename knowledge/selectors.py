"""Reads of the knowledge base, above all :func:`knowledge_search` (the brain's entry point).

Search is hybrid: the query's vector against the chunks' embeddings (pgvector cosine
distance on the HNSW index) and the query's keyword terms against PostgreSQL full-text
search over the normalised, lightly stemmed text ('simple' configuration: Morvo's own
normaliser does the Arabic work), fused by reciprocal rank fusion. Both sides read the
tenant's chunks and the global library's, never another tenant's; the vector side runs with
``hnsw.iterative_scan = relaxed_order`` so that the tenant filter, applied while the index
is scanned, never leaves it with fewer than the rows asked for.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from django.conf import settings
from django.db import connection

from knowledge import ingestion
from knowledge.embedders import EmbeddingError, get_embedder
from knowledge.models import Document

if TYPE_CHECKING:
    from morvo.models import Tenant

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "vector", "keyword"]
Fusion = Literal["score", "rrf"]
RRF_K = 60
# Hybrid score: (cosine similarity + KEYWORD_WEIGHT × share of the query's terms found) / (1 + weight).
KEYWORD_WEIGHT = 0.2
SNIPPET_CHARS = 320
MAX_K = 50
HNSW_EF_SEARCH = 100
KEYWORD_SCAN_LIMIT = 2000
# A query term PostgreSQL's statistics expect in more chunks than this is left out of the
# keyword side (unless every term is): it would cost a scan of that many rows and, found
# nearly everywhere, it tells documents apart no better than a stop word.
COMMON_TERM_ROWS = 5000
COMMON_TERMS_TTL_SECONDS = 300.0
_common_terms: dict[str, Any] = {"at": -COMMON_TERMS_TTL_SECONDS, "rows": {}}
# A document contributes at most this many chunks to one answer: several near-identical
# chunks of one document would push other documents (often the other language's) out.
MAX_CHUNKS_PER_DOCUMENT = 2


@dataclass(frozen=True)
class SearchHit:
    document_id: int
    title: str
    source: str
    document_type: str
    language: str
    chunk_id: int
    position: int
    snippet: str
    score: float

    def citation(self) -> dict[str, Any]:
        """What a reply's metadata carries to cite this hit."""
        return {
            "document_id": self.document_id,
            "title": self.title,
            "source": self.source,
            "position": self.position,
            "score": round(self.score, 4),
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def documents_visible(tenant: Tenant) -> Any:
    """The tenant's documents and the global library."""
    return Document.objects.visible_to(tenant)


def documents_own(tenant: Tenant) -> Any:
    return Document.objects.for_tenant(tenant)


def _vector_literal(vector: Any) -> str:
    return "[" + ",".join(f"{float(value):.7g}" for value in vector) + "]"


def _filters(tenant_id: int, document_types: list[str] | None, language: str | None) -> tuple[str, list[Any]]:
    clauses = ["(c.tenant_id = %s OR c.tenant_id IS NULL)"]
    params: list[Any] = [tenant_id]
    if document_types:
        clauses.append("c.document_type = ANY(%s)")
        params.append(list(document_types))
    if language:
        clauses.append("c.language = %s")
        params.append(language)
    return " AND ".join(clauses), params


def _estimated_rows(cursor: Any) -> dict[str, float]:
    """{term: estimated matching chunks} for the terms PostgreSQL's statistics on the
    ``search_vector`` column list as most common; refreshed every few minutes."""
    import time

    now = time.monotonic()
    if now - _common_terms["at"] < COMMON_TERMS_TTL_SECONDS:
        return _common_terms["rows"]  # type: ignore[no-any-return]
    cursor.execute(
        "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
        "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
        "WHERE s.tablename = 'knowledge_chunk' AND s.attname = 'search_vector'"
    )
    row = cursor.fetchone()
    rows: dict[str, float] = {}
    if row is not None and row[0] is not None and row[1] is not None:
        elements, frequencies, total = row
        total = max(float(total), 0.0)
        rows = {term: float(frequency) * total for term, frequency in zip(elements, frequencies, strict=False)}
    _common_terms.update(at=now, rows=rows)
    return rows


def _informative(cursor: Any, terms: list[str]) -> list[str]:
    estimated = _estimated_rows(cursor)
    kept = [term for term in terms if estimated.get(term, 0.0) <= COMMON_TERM_ROWS]
    if kept or not terms:
        return kept
    return [min(terms, key=lambda term: estimated.get(term, 0.0))]


class Candidate(NamedTuple):
    position: int
    text: str
    keywords: str
    language: str
    document_type: str
    document_id: int
    title: str
    source: str


def _candidates(
    cursor: Any,
    *,
    tenant_id: int,
    vector: Any,
    model_name: str | None,
    terms: list[str],
    where: str,
    params: list[Any],
    limit: int,
) -> tuple[dict[int, float], list[int], dict[int, Candidate]]:
    """Both sides' candidates in one round trip: the ``limit`` nearest chunks by cosine
    distance (HNSW), and the ``limit`` best full-text matches with their similarity too.
    Returns ({chunk id: cosine similarity}, keyword matches best first)."""
    parts: list[str] = []
    arguments: list[Any] = []
    prefix = ""
    literal = _vector_literal(vector) if vector is not None else None
    if literal is not None:
        # Filters are applied while the index is scanned; iterative scanning keeps going
        # until ``limit`` rows pass them (relaxed order: the rows are sorted again below).
        # The settings are local to the transaction, and both statements go in one message,
        # which PostgreSQL runs as one transaction: one round trip, no BEGIN/COMMIT (inside a
        # caller's transaction they last until its end, which only ever affects HNSW scans).
        prefix = (
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true); "
        )
        arguments.append(str(max(HNSW_EF_SEARCH, limit)))
        # ``where`` holds only fixed SQL with %s placeholders (see _filters): nothing of the
        # caller's text is formatted into the statement.
        parts.append(
            "(SELECT 'v' AS side, c.id AS id, 1 - (c.embedding <=> %s::vector) AS cosine, 0.0::real AS rank "  # noqa: S608
            "FROM knowledge_chunk c "
            f"WHERE {where} AND c.embedding_model = %s ORDER BY c.embedding <=> %s::vector LIMIT %s)"
        )
        arguments += [literal, *params, model_name, literal, limit]
    terms = _informative(cursor, terms)
    if terms:
        similarity = (
            "CASE WHEN c.embedding_model = %s THEN 1 - (c.embedding <=> %s::vector) ELSE 0 END"
            if literal is not None
            else "0.0"
        )
        # Only the first KEYWORD_SCAN_LIMIT matching rows are ranked (a term found in half of
        # the chunks would otherwise make every search rank tens of thousands of rows, for a
        # term that says little anyway), and only the best ``limit`` are joined back for their
        # similarity (embeddings are stored out of line: reading them is the costly part).
        parts.append(
            f"(SELECT 'k' AS side, c.id AS id, {similarity} AS cosine, best.rank AS rank FROM ("  # noqa: S608
            "SELECT matched.id, matched.rank FROM ("
            "SELECT c.id, ts_rank_cd(c.search_vector, query, 1) AS rank "
            "FROM knowledge_chunk c, to_tsquery('simple', %s) query "
            f"WHERE c.search_vector @@ query AND {where} LIMIT %s"
            ") matched ORDER BY matched.rank DESC, matched.id LIMIT %s"
            ") best JOIN knowledge_chunk c ON c.id = best.id)"
        )
        if literal is not None:
            arguments += [model_name, literal]
        arguments += [" | ".join(terms), *params, KEYWORD_SCAN_LIMIT, limit]
    if not parts:
        return {}, [], {}
    # The candidates come back with what a hit shows (text, document title and source), so
    # a search is one round trip; the document's tenant is checked again on the way.
    statement = (
        "SELECT u.side, u.id, u.cosine, u.rank, c.position, c.text, c.keywords, c.language, c.document_type, "  # noqa: S608
        "c.document_id, d.title, d.source FROM (" + " UNION ALL ".join(parts) + ") u "
        "JOIN knowledge_chunk c ON c.id = u.id JOIN knowledge_document d ON d.id = c.document_id "
        "WHERE (d.tenant_id = %s OR d.tenant_id IS NULL)"
    )
    cursor.execute(prefix + statement, [*arguments, tenant_id])
    if prefix:
        cursor.nextset()  # past the settings' row, to the candidates
    similarity_of: dict[int, float] = {}
    keyword: list[tuple[float, int]] = []
    rows: dict[int, Candidate] = {}
    for side, chunk_id, cosine, rank, *fields in cursor.fetchall():
        rows[chunk_id] = Candidate(*fields)
        if literal is not None:
            similarity_of[chunk_id] = float(cosine)
        if side == "k":
            keyword.append((float(rank), chunk_id))
    keyword.sort(key=lambda item: (-item[0], item[1]))
    return similarity_of, [chunk_id for _rank, chunk_id in keyword], rows


def knowledge_search_ranked(
    tenant: Tenant,
    query: str,
    *,
    k: int = 5,
    document_types: list[str] | None = None,
    language: str | None = None,
    threshold: float | None = None,
    mode: Mode = "hybrid",
    fusion: Fusion = "score",
) -> list[SearchHit]:
    """:func:`knowledge_search` with the retrieval side and the fusion chosen (the
    evaluation compares them)."""
    if tenant is None:
        raise ValueError("knowledge_search needs a tenant")
    query = (query or "").strip()
    if not query:
        return []
    k = max(1, min(int(k), MAX_K))
    if threshold is None:
        threshold = float(getattr(settings, "KNOWLEDGE_SEARCH_THRESHOLD", 0.0))
    where, params = _filters(tenant.pk, document_types, language)
    candidates = max(4 * k, 20)
    terms = ingestion.query_terms(query)

    embedder = get_embedder() if mode != "keyword" else None
    vector = None
    if embedder is not None:
        try:
            vector = embedder.encode_query(query)
        except EmbeddingError as error:
            # The remote embedder is down: answer from the keyword side rather than not at all.
            logger.warning("knowledge search without vectors: %s", error)
            embedder = None
            if mode == "vector":
                return []
    with connection.cursor() as cursor:
        similarity, keyword_hits, rows = _candidates(
            cursor,
            tenant_id=tenant.pk,
            vector=vector,
            model_name=embedder.name if embedder is not None else None,
            terms=terms if mode != "vector" else [],
            where=where,
            params=params,
            limit=candidates,
        )

    candidate_ids = list(dict.fromkeys([*similarity, *keyword_hits]))
    if not candidate_ids:
        return []
    keyword_rank = {chunk_id: rank for rank, chunk_id in enumerate(keyword_hits, start=1)}
    wanted = set(terms)

    def coverage(chunk: Candidate) -> float:
        """The share of the query's terms the chunk (with its title and heading) contains."""
        return len(wanted & set(chunk.keywords.split())) / len(wanted) if wanted else 0.0

    scored: list[tuple[float, int]] = []
    for chunk_id in candidate_ids:
        chunk = rows[chunk_id]
        cosine = similarity.get(chunk_id, 0.0)
        matched = coverage(chunk) if chunk_id in keyword_rank else 0.0
        if mode == "vector":
            score = cosine
        elif mode == "keyword":
            score = 1.0 / keyword_rank[chunk_id]
        elif fusion == "rrf":
            score = (1.0 / (RRF_K + keyword_rank[chunk_id]) if chunk_id in keyword_rank else 0.0) + (
                1.0 / (RRF_K + _rank_of(similarity, chunk_id)) if cosine >= threshold else 0.0
            )
        else:
            score = (cosine + KEYWORD_WEIGHT * matched) / (1.0 + KEYWORD_WEIGHT)
        if mode != "keyword" and cosine < threshold and matched == 0.0:
            continue  # a weak match by meaning, and not by words either
        scored.append((score, chunk_id))
    scored.sort(key=lambda item: (-item[0], item[1]))

    hits: list[SearchHit] = []
    per_document: dict[int, int] = {}
    for score, chunk_id in scored:
        chunk = rows[chunk_id]
        if per_document.get(chunk.document_id, 0) >= MAX_CHUNKS_PER_DOCUMENT:
            continue
        per_document[chunk.document_id] = per_document.get(chunk.document_id, 0) + 1
        text = chunk.text
        snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"
        hits.append(
            SearchHit(
                document_id=chunk.document_id,
                title=chunk.title,
                source=chunk.source,
                document_type=chunk.document_type,
                language=chunk.language,
                chunk_id=chunk_id,
                position=chunk.position,
                snippet=snippet,
                score=round(max(0.0, min(1.0, score)), 6),
            )
        )
        if len(hits) == k:
            break
    return hits


def _rank_of(similarity: dict[int, float], chunk_id: int) -> int:
    ordered = sorted(similarity, key=lambda key: -similarity[key])
    return ordered.index(chunk_id) + 1 if chunk_id in similarity else len(ordered) + 1


def knowledge_search(
    tenant: Tenant,
    query: str,
    *,
    k: int = 5,
    document_types: list[str] | None = None,
    language: str | None = None,
    threshold: float | None = None,
) -> list[SearchHit]:
    """The ``k`` best chunks for ``query`` among the tenant's documents and the global
    library, best first. ``document_types`` and ``language`` filter the chunks;
    ``threshold`` (cosine similarity, default ``KNOWLEDGE_SEARCH_THRESHOLD``) drops weak
    vector matches. ``score`` is the fused score scaled to 0–1 (1.0: first on both sides).
    A blank query returns no hits."""
    return knowledge_search_ranked(
        tenant, query, k=k, document_types=document_types, language=language, threshold=threshold
    )


def hits_as_sources(hits: list[SearchHit]) -> list[dict[str, Any]]:
    """The sources of an answer built from ``hits``, one per document, in order of rank."""
    seen: set[int] = set()
    sources = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            sources.append(hit.citation())
    return sources
