"""Brain benchmark: ``.venv/bin/python bench/brain.py`` (part of ``make bench``).

In one process, on the demo store (database ``morvo_bench_brain`` on the embedded server,
var folder ``var/bench``):

1. analyse: the router (``agents_app.router.analyze`` with the tenant: intent, sentiment,
   entities, products resolved in the catalogue) over every utterance of
   ``eval/data/intents_eval.jsonl``; p50/p95. Baseline in the same run: the sentence
   encoder alone on the same texts (the floor any encoder-based router pays).
2. offline turns: ``agents_app.pipeline.handle_turn`` end to end (context, guardrails,
   analyse, knowledge, plan, offline brain with its tools, state, trace written), per
   intent, on the eval utterances of that intent, companion intents in a companion
   conversation and customer intents in web-chat conversations; p50/p95 per intent and
   overall.
3. the CrewAI path: runs ``bench/brain_crew.py`` (CrewAI with its real OpenAI provider
   against the fake OpenAI-compatible server on 127.0.0.1) and prints its report: Morvo's
   own overhead apart from the model's time, and the cost of a typical companion turn at
   gpt-4o-mini prices from the traces.

Targets (issue): analyse p95 ≤ 30 ms; offline turn p95 ≤ 150 ms; CrewAI overhead p95 ≤ 250
ms; a companion turn ≤ $0.01. Exit status 0 when targets are missed (a report), 1 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# bench/platform.py would shadow the standard library's ``platform``: drop bench/ from the path.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]

BENCH_VAR_DIR = BASE_DIR / "var" / "bench"
RESULTS_DIR = BASE_DIR / "bench" / "results"
DATABASE = "morvo_bench_brain"
EVAL_FILE = BASE_DIR / "eval" / "data" / "intents_eval.jsonl"
ANALYSE_P95_TARGET_MS = 30.0
TURN_P95_TARGET_MS = 150.0
COMPANION_INTENTS = {"analytics_report", "content_creation", "campaign_strategy", "seo"}


def environment() -> None:
    BENCH_VAR_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "morvo.settings",
            "DATABASE_URL": "",
            "MORVO_REDIS_URL": "",
            "MORVO_DATABASE_NAME": DATABASE,
            "MORVO_VAR_DIR": str(BENCH_VAR_DIR),
            "PROMETHEUS_MULTIPROC_DIR": str(BENCH_VAR_DIR / "prometheus"),
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "ERROR",
            "OPENAI_API_KEY": "",
            "OPENAI_BASE_URL": "",
            "MORVO_BRAIN": "offline",
        }
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = (len(ordered) - 1) * q
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def load_utterances() -> list[dict[str, Any]]:
    with EVAL_FILE.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def measure_analyse(tenant: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    from agents_app.router import analyze
    from knowledge.embedders import local_encode

    analyze("warm up", tenant)  # builds the classifier and the catalogue once
    encoder_ms, analyse_ms = [], []
    for row in rows:
        started = time.perf_counter()
        local_encode([row["text"]])
        encoder_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        analyze(row["text"], tenant)
        analyse_ms.append((time.perf_counter() - started) * 1000)
    return {
        "count": len(rows),
        "analyse_p50_ms": percentile(analyse_ms, 0.5),
        "analyse_p95_ms": percentile(analyse_ms, 0.95),
        "encoder_p50_ms": percentile(encoder_ms, 0.5),
        "encoder_p95_ms": percentile(encoder_ms, 0.95),
    }


def measure_turns(tenant: Any, owner: Any, rows: list[dict[str, Any]], per_intent: int) -> dict[str, Any]:
    from agents_app.pipeline import handle_turn
    from conversations import services as chat
    from conversations.models import Message

    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if len(by_intent[row["intent"]]) < per_intent:
            by_intent[row["intent"]].append(row["text"])
    timings: dict[str, list[float]] = defaultdict(list)
    companion = chat.conversation_start_companion(tenant, owner, title="bench")
    for intent, texts in sorted(by_intent.items()):
        for number, text in enumerate(texts):
            if intent in COMPANION_INTENTS:
                conversation = companion
            else:
                conversation = chat.conversation_start_visitor(tenant, f"bench-{intent}-{number}-{time.time_ns()}")
            message = Message.objects.for_tenant(tenant).create(
                tenant=tenant, conversation=conversation, role=Message.Role.USER, content=text
            )
            started = time.perf_counter()
            handle_turn(tenant, conversation, message)
            timings[intent].append((time.perf_counter() - started) * 1000)
    everything = [value for values in timings.values() for value in values]
    return {
        "per_intent": {
            intent: {
                "turns": len(values),
                "p50_ms": percentile(values, 0.5),
                "p95_ms": percentile(values, 0.95),
            }
            for intent, values in sorted(timings.items())
        },
        "all": {
            "turns": len(everything),
            "p50_ms": percentile(everything, 0.5),
            "p95_ms": percentile(everything, 0.95),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, default=20, help="offline turns per intent")
    parser.add_argument("--skip-crew", action="store_true", help="do not run bench/brain_crew.py")
    args = parser.parse_args(argv)

    environment()
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from crm.demo_data import DEMO_OWNER_EMAIL, DEMO_SLUG, seed_demo
        from morvo.models import Tenant

        call_command("migrate", interactive=False, verbosity=0)
        seed_demo()
        try:
            from knowledge.services import knowledge_seed_global, knowledge_seed_tenant

            knowledge_seed_global()
            knowledge_seed_tenant(Tenant.objects.get(slug=DEMO_SLUG))
        except ImportError:
            pass
        tenant = Tenant.objects.get(slug=DEMO_SLUG)
        owner = get_user_model().objects.get(email__iexact=DEMO_OWNER_EMAIL)
        rows = load_utterances()
        analyse = measure_analyse(tenant, rows)
        turns = measure_turns(tenant, owner, rows, args.per_intent)
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    analyse_ok = analyse["analyse_p95_ms"] <= ANALYSE_P95_TARGET_MS
    turn_ok = turns["all"]["p95_ms"] <= TURN_P95_TARGET_MS
    print(f"brain bench on the demo store, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(f"{'figure':<58} {'value':>20}  {'target':<16} verdict")
    print(
        f"{'analyse (' + str(analyse['count']) + ' eval utterances) p50 / p95':<58} "
        f"{analyse['analyse_p50_ms']:>8.1f} / {analyse['analyse_p95_ms']:>6.1f} ms  "
        f"{'p95 ≤ 30 ms':<16} {'ok' if analyse_ok else 'MISSED'}"
    )
    print(
        f"{'  baseline: the encoder alone, same texts, p50 / p95':<58} "
        f"{analyse['encoder_p50_ms']:>8.1f} / {analyse['encoder_p95_ms']:>6.1f} ms"
    )
    for intent, figures in turns["per_intent"].items():
        label = f"  offline turn {intent} ({figures['turns']}) p50 / p95"
        print(f"{label:<58} {figures['p50_ms']:>8.1f} / {figures['p95_ms']:>6.1f} ms")
    label = f"offline turn, all intents ({turns['all']['turns']}) p50 / p95"
    print(
        f"{label:<58} {turns['all']['p50_ms']:>8.1f} / {turns['all']['p95_ms']:>6.1f} ms  "
        f"{'p95 ≤ 150 ms':<16} {'ok' if turn_ok else 'MISSED'}"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS_DIR / f"brain-{stamp}.json").write_text(json.dumps({"analyse": analyse, "turns": turns}, indent=2))
    sys.stdout.flush()

    if args.skip_crew:
        return 0
    crew = BASE_DIR / "bench" / "brain_crew.py"
    if not crew.exists():
        print("CrewAI path: bench/brain_crew.py is missing", file=sys.stderr)
        return 1
    print("\n== the CrewAI path (bench/brain_crew.py)", flush=True)
    completed = subprocess.run([sys.executable, str(crew)], cwd=BASE_DIR, timeout=1800, check=False)
    return 0 if completed.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
