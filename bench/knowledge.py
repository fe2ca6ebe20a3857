"""Knowledge benchmark: ``.venv/bin/python bench/knowledge.py`` (part of ``make bench``).

In its own database (``morvo_bench_knowledge`` on the embedded server, var folder
``var/bench``), measures:

1. search latency at 100,000 chunks (synthetic clustered 512-dimension vectors and synthetic
   text; 10% belong to the searching tenant, 5% to the global library, the rest to 18 other
   tenants): ``knowledge.selectors.knowledge_search`` (the service: query encoding, the
   hybrid SQL, loading and shaping the hits) and the raw vector SQL alone (psycopg, the same
   query, with the tenant filter) — p50/p95 of each in the same run;
2. HNSW recall@10 against an exact scan, for queries with the tenant filter (pgvector's
   iterative scan) and without;
3. ingestion throughput with the default encoder: a real Arabic and English document of a
   few hundred chunks through ``knowledge.services.document_ingest`` (parse, chunk, embed,
   write), and the encoder alone with 1 and 2 BLAS threads.

The 100k rows are generated once (COPY, then the HNSW index is built) and reused by later
runs (``--rebuild`` makes them again). Prints a table with targets and writes
``bench/results/knowledge-<timestamp>.json``. Exit status 0 when a target is missed (a
report), 1 on errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# Run as a script, bench/ comes first on sys.path, where bench/platform.py would shadow the
# standard library's ``platform``: drop it before anything imports that.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]

RESULTS_DIR = BASE_DIR / "bench" / "results"
DATABASE = "morvo_bench_knowledge"
TENANT_SLUG = "kb-bench"
OTHER_TENANTS = 18
SEED = 20261121

# Targets.
SERVICE_P95_TARGET_MS = 20.0
RECALL_TARGET = 0.95
INGEST_TARGET_PER_S = 200.0


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [value * 1000 for value in seconds]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2)}


def setup(database: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings",
            "DATABASE_URL": "",
            "MORVO_REDIS_URL": "",
            "MORVO_DATABASE_NAME": database,
            "MORVO_VAR_DIR": str(BASE_DIR / "var" / "bench"),
            "PROMETHEUS_MULTIPROC_DIR": str(BASE_DIR / "var" / "bench" / "prometheus"),
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# --- synthetic corpus -----------------------------------------------------------------------


def vocabulary(rng: Any, size: int = 6000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(list(letters), size=int(rng.integers(4, 9)))) for _ in range(size * 2)}
    return sorted(words)[:size]


def build_corpus(total: int, clusters: int, rebuild: bool) -> dict[str, Any]:
    """Tenants, one document per 500 chunks, ``total`` chunks. Reused when already there."""
    import numpy as np
    from django.db import connection, transaction

    from knowledge.ingestion import keyword_form
    from knowledge.models import Chunk, Document
    from morvo.models import Tenant

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first() or Tenant.objects.create(slug=TENANT_SLUG, name="KB")
    others = []
    for index in range(OTHER_TENANTS):
        slug = f"{TENANT_SLUG}-other-{index}"
        others.append(Tenant.objects.filter(slug=slug).first() or Tenant.objects.create(slug=slug, name=slug))
    existing = Chunk.objects.all_tenants().filter(embedding_model="bench-synthetic").count()
    marker = Document.objects.all_tenants().filter(source="bench-synthetic").values_list("region", flat=True).first()
    if marker != f"clusters={clusters}":
        rebuild = True
    rng = np.random.default_rng(SEED)
    centroids = rng.standard_normal((clusters, 512)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    words = vocabulary(rng)
    info = {"tenant": tenant, "centroids": centroids, "words": words, "rng": rng}
    if existing == total and not rebuild:
        say(f"reusing {existing} synthetic chunks")
        return {**info, "built_s": None, "index_s": None}

    say(f"generating {total} synthetic chunks in {clusters} clusters")
    started = time.perf_counter()
    with transaction.atomic():
        Document.objects.all_tenants().filter(source="bench-synthetic").delete()
    owners: list[int | None] = []
    for position in range(total):
        share = position / total
        if share < 0.10:
            owners.append(tenant.pk)
        elif share < 0.15:
            owners.append(None)
        else:
            owners.append(others[position % OTHER_TENANTS].pk)
    per_document = 500
    document_ids: list[int] = []
    with transaction.atomic():
        for start in range(0, total, per_document):
            document = Document.objects.create(
                tenant_id=owners[start],
                title=f"synthetic {start // per_document}",
                source="bench-synthetic",
                document_type="text",
                region=f"clusters={clusters}",
                language="en",
                status=Document.Status.READY,
                content=b"",
                content_hash=f"bench-{start:08d}",
                chunk_count=per_document,
                embedding_model="bench-synthetic",
            )
            document_ids.append(document.pk)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS knowledge_chunk_embedding_hnsw")
        cursor.execute("DROP INDEX IF EXISTS knowledge_chunk_search_gin")
    raw = connection.connection  # psycopg connection: COPY
    assignment = rng.integers(0, clusters, size=total)
    batch = 5000
    with raw.cursor() as cursor:
        for start in range(0, total, batch):
            stop = min(total, start + batch)
            noise = rng.standard_normal((stop - start, 512)).astype(np.float32) * 0.035
            vectors = centroids[assignment[start:stop]] + noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with cursor.copy(
                "COPY knowledge_chunk (tenant_id, document_id, position, heading, text, document_type, language, "
                "keywords, embedding, embedding_model) FROM STDIN"
            ) as copy:
                for offset, vector in enumerate(vectors):
                    position = start + offset
                    text = " ".join(words[int(i)] for i in rng.zipf(1.3, size=40) % len(words))
                    copy.write_row(
                        (
                            owners[position],
                            document_ids[position // per_document],
                            position % per_document,
                            "",
                            text,
                            "text",
                            "en",
                            keyword_form(text),
                            "[" + ",".join(f"{value:.6f}" for value in vector) + "]",
                            "bench-synthetic",
                        )
                    )
        raw.commit()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunk SET search_vector = to_tsvector('simple', keywords) "
            "WHERE embedding_model = 'bench-synthetic'"
        )
    built = time.perf_counter() - started
    say(f"rows written in {built:.1f}s; building the HNSW and GIN indexes")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        cursor.execute(
            "CREATE INDEX knowledge_chunk_embedding_hnsw ON knowledge_chunk "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        cursor.execute("CREATE INDEX knowledge_chunk_search_gin ON knowledge_chunk USING gin (search_vector)")
        cursor.execute("ANALYZE knowledge_chunk")
    index_s = time.perf_counter() - started
    say(f"indexes built in {index_s:.1f}s")
    return {**info, "built_s": round(built, 1), "index_s": round(index_s, 1)}


def query_vectors(corpus: dict[str, Any], count: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    centroids = corpus["centroids"]
    picks = rng.integers(0, len(centroids), size=count)
    vectors = centroids[picks] + rng.standard_normal((count, 512)).astype(np.float32) * 0.035
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def literal(vector: Any) -> str:
    return "[" + ",".join(f"{float(value):.7g}" for value in vector) + "]"


# --- 1. latency -----------------------------------------------------------------------------


def measure_latency(corpus: dict[str, Any], queries: int) -> dict[str, Any]:
    import numpy as np
    from django.db import connection, transaction

    from knowledge import selectors
    from knowledge.embedders import get_embedder

    tenant = corpus["tenant"]
    words = corpus["words"]
    rng = np.random.default_rng(SEED + 2)
    texts = [" ".join(words[int(i)] for i in rng.zipf(1.3, size=4) % len(words)) for _ in range(queries)]
    embedder = get_embedder()
    embedder.encode_query("warm up")
    # The synthetic chunks carry their own model name: the service compares vectors of the
    # configured model only, so for the bench the encoder is named like them.
    embedder_name = embedder.name
    embedder.name = "bench-synthetic"
    try:
        for text in texts[:20]:
            selectors.knowledge_search(tenant, text, k=5, threshold=-1.0)
        service: list[float] = []
        returned: list[int] = []
        for text in texts:
            began = time.perf_counter()
            hits = selectors.knowledge_search(tenant, text, k=5, threshold=-1.0)
            service.append(time.perf_counter() - began)
            returned.append(len(hits))
    finally:
        embedder.name = embedder_name

    vectors = query_vectors(corpus, queries)
    sql = (
        "SELECT c.id, 1 - (c.embedding <=> %s::vector) FROM knowledge_chunk c "
        "WHERE (c.tenant_id = %s OR c.tenant_id IS NULL) AND c.embedding_model = %s "
        "ORDER BY c.embedding <=> %s::vector LIMIT %s"
    )
    raw: list[float] = []
    short = 0
    for index, vector in enumerate(vectors):
        text = literal(vector)
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', '100', true)"
            )
            cursor.execute(sql, [text, tenant.pk, "bench-synthetic", text, 20])
            rows = cursor.fetchall()
        if index >= 20:
            raw.append(time.perf_counter() - began)
        short += len(rows) < 20
    return {
        "service": summary_ms(service),
        "service_min_hits": min(returned),
        "raw_sql": summary_ms(raw),
        "raw_sql_short_results": short,
    }


# --- 2. recall ------------------------------------------------------------------------------


def measure_recall(corpus: dict[str, Any], queries: int) -> dict[str, float]:
    from django.db import connection, transaction

    tenant = corpus["tenant"]
    vectors = query_vectors(corpus, queries)
    results: dict[str, float] = {}
    for label, where, params in (
        ("filtered", "(tenant_id = %s OR tenant_id IS NULL) AND ", [tenant.pk]),
        ("unfiltered", "", []),
    ):
        total = 0.0
        for vector in vectors:
            text = literal(vector)
            sql = (
                f"SELECT id FROM knowledge_chunk WHERE {where}embedding_model = 'bench-synthetic' "  # noqa: S608
                "ORDER BY embedding <=> %s::vector LIMIT 10"
            )
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', '100', true)"
                )
                cursor.execute(sql, [*params, text])
                approximate = {row[0] for row in cursor.fetchall()}
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute(sql, [*params, text])
                exact = {row[0] for row in cursor.fetchall()}
            total += len(approximate & exact) / max(1, len(exact))
        results[label] = round(total / len(vectors), 4)
    return results


# --- 3. ingestion ---------------------------------------------------------------------------


def ingestion_document() -> bytes:
    """A long Markdown document of real Arabic and English text (the seed library, sections
    numbered so no two are identical)."""
    folder = BASE_DIR / "knowledge" / "seed" / "global"
    parts = []
    for round_number in range(4):
        for path in sorted(folder.glob("*.md")):
            body = path.read_text(encoding="utf-8").replace("# ", f"# {round_number}-", 1)
            parts.append(body)
    return "\n\n".join(parts).encode()


def measure_ingestion() -> dict[str, Any]:
    from django.conf import settings

    from knowledge import ingestion, services
    from knowledge.embedders import local_encoder
    from knowledge.models import Chunk, Document
    from morvo.models import Tenant

    tenant = Tenant.objects.get(slug=TENANT_SLUG)
    content = ingestion_document()
    Document.objects.for_tenant(tenant).filter(source="bench-ingest.md").delete()
    drafts = ingestion.chunk_blocks(ingestion.parse("markdown", content))
    texts = [draft.text for draft in drafts]
    encoder = local_encoder()
    backend = encoder._model
    encoder_rates = {}
    for threads in (1, 2):
        with backend._threadpool(limits=threads, user_api="blas"):
            backend._encode(texts[:32])
            began = time.perf_counter()
            backend._encode(texts)
            encoder_rates[f"encoder_{threads}_thread_chunks_per_s"] = round(
                len(texts) / (time.perf_counter() - began), 1
            )

    began = time.perf_counter()
    result = services.document_upload(
        tenant, filename="bench-ingest.md", content=content, source="bench-ingest.md", ingest_now=True
    )
    elapsed = time.perf_counter() - began
    chunks = Chunk.objects.for_tenant(tenant).filter(document=result.document).count()
    Document.objects.for_tenant(tenant).filter(pk=result.document.pk).delete()
    return {
        "status": result.document.status,
        "chunks": chunks,
        "seconds": round(elapsed, 2),
        "chunks_per_s": round(chunks / elapsed, 1),
        "ingest_threads": settings.KNOWLEDGE_INGEST_ENCODER_THREADS,
        **encoder_rates,
    }


# --- report ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("--rebuild", action="store_true", help="Generate the synthetic chunks again.")
    args = parser.parse_args()

    setup(args.database)
    corpus = build_corpus(args.chunks, args.clusters, args.rebuild)
    say(f"search latency ({args.queries} queries)")
    latency = measure_latency(corpus, args.queries)
    say(f"HNSW recall@10 ({args.recall_queries} queries, exact scan for each)")
    recall = measure_recall(corpus, args.recall_queries)
    say("ingestion")
    ingest = measure_ingestion()
    if latency["service_min_hits"] < 5 or ingest["status"] != "ready":
        say(f"error: search returned {latency['service_min_hits']} hits; ingestion ended {ingest['status']}")
        return 1

    rows = [
        ("service search p50 (ms)", latency["service"]["p50_ms"], ""),
        ("service search p95 (ms)", latency["service"]["p95_ms"], f"<= {SERVICE_P95_TARGET_MS:.0f}"),
        ("raw SQL vector p50 (ms)", latency["raw_sql"]["p50_ms"], ""),
        ("raw SQL vector p95 (ms)", latency["raw_sql"]["p95_ms"], ""),
        ("HNSW recall@10, tenant filter", recall["filtered"], f">= {RECALL_TARGET}"),
        ("HNSW recall@10, no filter", recall["unfiltered"], f">= {RECALL_TARGET}"),
        ("ingestion (chunks/s)", ingest["chunks_per_s"], f">= {INGEST_TARGET_PER_S:.0f}"),
        ("encoder alone, 1 thread (chunks/s)", ingest["encoder_1_thread_chunks_per_s"], ""),
        ("encoder alone, 2 threads (chunks/s)", ingest["encoder_2_thread_chunks_per_s"], ""),
    ]
    verdicts = {
        "service search p95 (ms)": latency["service"]["p95_ms"] <= SERVICE_P95_TARGET_MS,
        "HNSW recall@10, tenant filter": recall["filtered"] >= RECALL_TARGET,
        "HNSW recall@10, no filter": recall["unfiltered"] >= RECALL_TARGET,
        "ingestion (chunks/s)": ingest["chunks_per_s"] >= INGEST_TARGET_PER_S,
    }
    print()
    print(f"knowledge bench: {args.chunks} chunks, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<38} {'value':>10}  {'target':<8} result")
    for name, value, target in rows:
        verdict = ("PASS" if verdicts[name] else "FAIL") if name in verdicts else ""
        print(f"{name:<38} {value:>10}  {target:<8} {verdict}")
    print(
        f"(ingestion: {ingest['chunks']} chunks in {ingest['seconds']}s with "
        f"{ingest['ingest_threads']} encoder threads; raw SQL queries short of 20 rows: "
        f"{latency['raw_sql_short_results']})"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    report = {
        "chunks": args.chunks,
        "latency": latency,
        "recall": recall,
        "ingestion": ingest,
        "build": {"rows_s": corpus["built_s"], "index_s": corpus["index_s"]},
    }
    (RESULTS_DIR / f"knowledge-{stamp}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
