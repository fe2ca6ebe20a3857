"""Knowledge retrieval evaluation: ``.venv/bin/python eval/knowledge.py`` (part of ``make eval``).

Loads the global MENA library and the demo shop's documents into a tenant of its own
database (``morvo_eval_knowledge`` on the embedded server, var folder ``var/eval``), asks
the labelled questions of ``eval/data/knowledge_questions.csv`` (Arabic and English,
including Arabic questions over English documents and the reverse; each names the document
or documents that answer it), and prints recall@5 and MRR@10 for vector-only, keyword-only
and hybrid retrieval in the same run, overall and by kind (same language, cross-lingual).

A question counts as found at the rank of the first result that belongs to one of its
expected documents. Exit status 0 (a report), 1 on errors.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "eval"]

QUESTIONS = BASE_DIR / "eval" / "data" / "knowledge_questions.csv"
DATABASE = "morvo_eval_knowledge"
TENANT_SLUG = "eval-knowledge"
RECALL_TARGET = 0.90
MODES = ("vector", "keyword", "hybrid", "hybrid-rrf")


def setup(database: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings",
            "DATABASE_URL": "",
            "MORVO_REDIS_URL": "",
            "MORVO_DATABASE_NAME": database,
            "MORVO_VAR_DIR": str(BASE_DIR / "var" / "eval"),
            "PROMETHEUS_MULTIPROC_DIR": str(BASE_DIR / "var" / "eval" / "prometheus"),
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def question_language(text: str) -> str:
    from knowledge.ingestion import detect_language

    return detect_language(text)


def document_language(source: str) -> str:
    return "ar" if source.rsplit(".", 1)[0].endswith("-ar") else "en"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--show-misses", type=int, default=10, help="Hybrid misses to print.")
    args = parser.parse_args()

    started = time.perf_counter()
    setup(args.database)
    from knowledge import services
    from knowledge.models import Document
    from knowledge.selectors import knowledge_search_ranked
    from morvo.models import Tenant

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first() or Tenant.objects.create(
        slug=TENANT_SLUG, name="Eval shop"
    )
    services.knowledge_seed_global()
    services.knowledge_seed_tenant(tenant)
    by_source = {
        document.source.removeprefix("morvo-seed:"): document.pk
        for document in Document.objects.visible_to(tenant).filter(status=Document.Status.READY)
    }
    print(f"[eval] {len(by_source)} documents ready ({time.perf_counter() - started:.1f}s)")

    with QUESTIONS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    questions: list[dict[str, Any]] = []
    for row in rows:
        expected = row["expected"].split("|")
        missing = [source for source in expected if source not in by_source]
        if missing:
            print(f"[eval] error: {row['question']!r} expects unknown documents {missing}")
            return 1
        asked_in = question_language(row["question"])
        cross = all(document_language(source) != asked_in for source in expected)
        questions.append(
            {
                "question": row["question"],
                "expected": {by_source[source] for source in expected},
                "labels": expected,
                "kind": "cross-lingual" if cross else "same language",
                "language": asked_in,
            }
        )

    results: dict[str, list[int | None]] = {}
    latency: dict[str, float] = {}
    for mode in MODES:
        ranks: list[int | None] = []
        began = time.perf_counter()
        for item in questions:
            if mode == "hybrid-rrf":  # the same candidates fused by reciprocal rank, for comparison
                hits = knowledge_search_ranked(tenant, item["question"], k=10, mode="hybrid", fusion="rrf")
            else:
                hits = knowledge_search_ranked(tenant, item["question"], k=10, mode=mode)  # type: ignore[arg-type]
            rank = next((index for index, hit in enumerate(hits, 1) if hit.document_id in item["expected"]), None)
            ranks.append(rank)
        latency[mode] = (time.perf_counter() - began) / len(questions) * 1000
        results[mode] = ranks

    def recall(ranks: list[int | None]) -> float:
        return sum(1 for rank in ranks if rank is not None and rank <= 5) / len(ranks) if ranks else 0.0

    def mrr(ranks: list[int | None]) -> float:
        return sum(1 / rank for rank in ranks if rank is not None) / len(ranks) if ranks else 0.0

    kinds = ["all", "same language", "cross-lingual", "ar questions", "en questions"]

    def subset(mode: str, kind: str) -> list[int | None]:
        keep = {
            "all": lambda item: True,
            "same language": lambda item: item["kind"] == "same language",
            "cross-lingual": lambda item: item["kind"] == "cross-lingual",
            "ar questions": lambda item: item["language"] == "ar",
            "en questions": lambda item: item["language"] == "en",
        }[kind]
        return [rank for item, rank in zip(questions, results[mode], strict=True) if keep(item)]

    counts = {kind: len(subset("hybrid", kind)) for kind in kinds}
    print(
        f"[eval] {len(questions)} questions: {counts['same language']} same language, "
        f"{counts['cross-lingual']} cross-lingual; {counts['ar questions']} Arabic, {counts['en questions']} English"
    )
    print()
    print(f"{'mode':<10} {'subset':<15} {'n':>4} {'recall@5':>9} {'MRR@10':>8} {'ms/query':>9}")
    for mode in MODES:
        for kind in kinds:
            ranks = subset(mode, kind)
            print(
                f"{mode:<10} {kind:<15} {len(ranks):>4} {recall(ranks):>9.3f} {mrr(ranks):>8.3f} "
                f"{latency[mode] if kind == 'all' else float('nan'):>9.1f}"
            )
    hybrid_recall = recall(results["hybrid"])
    verdict = "PASS" if hybrid_recall >= RECALL_TARGET else "FAIL"
    print()
    print(f"target: hybrid recall@5 >= {RECALL_TARGET:.2f}: {hybrid_recall:.3f} {verdict}")
    misses = [item for item, rank in zip(questions, results["hybrid"], strict=True) if rank is None or rank > 5]
    if misses and args.show_misses:
        print(f"hybrid misses ({len(misses)}):")
        for item in misses[: args.show_misses]:
            print(f"  - {item['question']}  (expected {', '.join(item['labels'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
