"""Router evaluation: ``.venv/bin/python eval/router.py`` (part of ``make eval``).

Runs the offline router (``agents_app.router.analyze`` with no tenant, so no database) over
the held-out utterances in ``eval/data/intents_eval.jsonl`` and, in the same run, the keyword
baseline of the original design (``eval/keyword_baseline.py``) over the same set. For each it
prints accuracy and macro-F1 overall and per language (``ar``, with mixed Arabic/English
messages counted as Arabic, and ``en``), accuracy per dialect, the confusion matrix (rows the
true intent, columns the predicted one) and the p50/p95 time of one analysis; for the router
also how often the detected language matches the label. PASS/FAIL lines compare each language
against the targets (accuracy ≥ 0.90 and macro-F1 ≥ 0.88).

None of these utterances is a training example (``agents_app/router/data/examples.jsonl``):
the script refuses to run if one is, after Arabic normalisation.

``--baseline-only`` evaluates the keyword baseline alone (no Django, no encoder);
``--errors`` lists every misclassified utterance. The exit status is 0 whenever the
evaluation ran (missed targets are a report, not an error) and 1 when the data is unusable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# Run as a script, eval/ comes first on sys.path, where eval/knowledge.py would shadow the
# ``knowledge`` app: the project root takes its place.
sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() not in (BASE_DIR, BASE_DIR / "eval")]

from eval.keyword_baseline import keyword_intent  # noqa: E402
from morvo.text import normalize_arabic  # noqa: E402

EVAL_PATH = BASE_DIR / "eval" / "data" / "intents_eval.jsonl"
TRAINING_PATH = BASE_DIR / "agents_app" / "router" / "data" / "examples.jsonl"

INTENTS = (
    "analytics_report",
    "content_creation",
    "campaign_strategy",
    "seo",
    "product_inquiry",
    "stock_alert",
    "booking",
    "complaint",
    "human_handoff",
    "greeting",
    "other",
)
SHORT_LABELS = {
    "analytics_report": "anl",
    "content_creation": "cnt",
    "campaign_strategy": "cmp",
    "seo": "seo",
    "product_inquiry": "prd",
    "stock_alert": "stk",
    "booking": "bkg",
    "complaint": "cpl",
    "human_handoff": "hnd",
    "greeting": "grt",
    "other": "oth",
}
LANGUAGE_GROUPS = ("ar", "en")
DIALECTS = ("msa", "gulf", "egyptian", "levantine", "en")

ACCURACY_TARGET = 0.90
MACRO_F1_TARGET = 0.88


@dataclass
class Run:
    """One system's predictions over the evaluation set."""

    name: str
    predicted: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # detected language, when the system reports one
    seconds: list[float] = field(default_factory=list)
    warm_up_seconds: float = 0.0


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def check_rows(rows: Sequence[dict[str, Any]], training: Sequence[dict[str, Any]]) -> list[str]:
    """Problems that make the evaluation meaningless: unknown labels, training examples reused."""
    problems = []
    for number, row in enumerate(rows, start=1):
        if row.get("intent") not in INTENTS:
            problems.append(f"line {number}: unknown intent {row.get('intent')!r}")
        if row.get("language") not in ("ar", "en", "mixed"):
            problems.append(f"line {number}: unknown language {row.get('language')!r}")
        if not str(row.get("text", "")).strip():
            problems.append(f"line {number}: empty text")
    seen = {normalize_arabic(row["text"]) for row in training}
    for number, row in enumerate(rows, start=1):
        if normalize_arabic(row.get("text", "")) in seen:
            problems.append(f"line {number}: also a training example: {row['text']!r}")
    return problems


def language_group(language: str) -> str:
    return "en" if language == "en" else "ar"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    if not truth:
        return math.nan
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)


def per_intent_f1(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """F1 of every intent present in ``truth``; a wrong prediction counts against the intent
    predicted (a false positive) and the true one (a false negative)."""
    scores = {}
    for intent in INTENTS:
        support = sum(t == intent for t in truth)
        if not support:
            continue
        true_positive = sum(t == p == intent for t, p in zip(truth, predicted, strict=True))
        predicted_count = sum(p == intent for p in predicted)
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support
        scores[intent] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    scores = per_intent_f1(truth, predicted)
    return sum(scores.values()) / len(scores) if scores else math.nan


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str]) -> list[list[int]]:
    counts = Counter(zip(truth, predicted, strict=True))
    return [[counts[(t, p)] for p in INTENTS] for t in INTENTS]


def run_keyword_baseline(rows: Sequence[dict[str, Any]]) -> Run:
    run = Run("keyword baseline")
    for row in rows:
        started = time.perf_counter()
        run.predicted.append(keyword_intent(row["text"]))
        run.seconds.append(time.perf_counter() - started)
    return run


def load_router() -> Callable[..., Any]:
    """``agents_app.router.analyze``, with Django set up (the router reads settings; with no
    tenant it touches no database)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morvo.settings")
    import django

    django.setup()
    from agents_app.router import analyze

    return analyze


def run_router(rows: Sequence[dict[str, Any]], analyze: Callable[..., Any]) -> Run:
    run = Run("router")
    started = time.perf_counter()
    analyze("مرحبا")  # loads the encoder and embeds the examples: a process start, not a turn
    run.warm_up_seconds = time.perf_counter() - started
    for row in rows:
        started = time.perf_counter()
        analysis = analyze(row["text"], tenant=None)
        run.seconds.append(time.perf_counter() - started)
        run.predicted.append(analysis.intent)
        run.languages.append(analysis.language)
    return run


def print_report(run: Run, rows: Sequence[dict[str, Any]], *, show_errors: bool) -> bool:
    """Print one system's figures; True when every language meets the targets."""
    truth = [row["intent"] for row in rows]
    groups = [language_group(row["language"]) for row in rows]
    print(f"\n=== {run.name} ({len(rows)} utterances) ===")
    print(f"{'slice':<10}{'n':>6}{'accuracy':>10}{'macro-F1':>10}")
    slices: list[tuple[str, list[int]]] = [("all", list(range(len(rows))))]
    slices += [(group, [i for i, g in enumerate(groups) if g == group]) for group in LANGUAGE_GROUPS]
    results: dict[str, tuple[float, float]] = {}
    for name, indexes in slices:
        sub_truth = [truth[i] for i in indexes]
        sub_predicted = [run.predicted[i] for i in indexes]
        results[name] = (accuracy(sub_truth, sub_predicted), macro_f1(sub_truth, sub_predicted))
        print(f"{name:<10}{len(indexes):>6}{results[name][0]:>10.3f}{results[name][1]:>10.3f}")

    print("accuracy per dialect: ", end="")
    parts = []
    for dialect in DIALECTS:
        indexes = [i for i, row in enumerate(rows) if row.get("dialect") == dialect]
        if indexes:
            value = accuracy([truth[i] for i in indexes], [run.predicted[i] for i in indexes])
            parts.append(f"{dialect} {value:.3f} (n={len(indexes)})")
    mixed = [i for i, row in enumerate(rows) if row["language"] == "mixed"]
    if mixed:
        value = accuracy([truth[i] for i in mixed], [run.predicted[i] for i in mixed])
        parts.append(f"mixed {value:.3f} (n={len(mixed)})")
    print(", ".join(parts))

    print(
        "F1 per intent: "
        + ", ".join(f"{SHORT_LABELS[k]} {v:.2f}" for k, v in per_intent_f1(truth, run.predicted).items())
    )

    if run.languages:
        matches = sum(detected == row["language"] for detected, row in zip(run.languages, rows, strict=True))
        print(f"language detected as labelled: {matches}/{len(rows)} ({matches / len(rows):.3f})")

    print("confusion matrix (rows true, columns predicted):")
    header = "".join(f"{SHORT_LABELS[i]:>5}" for i in INTENTS)
    print(f"{'':<5}{header}")
    for intent, counts in zip(INTENTS, confusion_matrix(truth, run.predicted), strict=True):
        cells = "".join(f"{c:>5}" if c else f"{'.':>5}" for c in counts)
        print(f"{SHORT_LABELS[intent]:<5}{cells}")

    ms = [s * 1000 for s in run.seconds]
    warm_up = f", first call (loading) {run.warm_up_seconds * 1000:.0f} ms" if run.warm_up_seconds else ""
    print(f"analyse time: p50 {percentile(ms, 50):.2f} ms, p95 {percentile(ms, 95):.2f} ms{warm_up}")

    if show_errors:
        print("misclassified:")
        for row, predicted in zip(rows, run.predicted, strict=True):
            if predicted != row["intent"]:
                print(f"  [{row['language']}/{row.get('dialect', '?')}] {row['intent']} -> {predicted}: {row['text']}")

    passed = True
    for group in LANGUAGE_GROUPS:
        acc, f1 = results[group]
        if math.isnan(acc):
            print(f"n/a {run.name} [{group}]: no utterances in this language")
            continue
        ok = acc >= ACCURACY_TARGET and f1 >= MACRO_F1_TARGET
        passed = passed and ok
        verdict = "PASS" if ok else "FAIL"
        print(
            f"{verdict} {run.name} [{group}]: accuracy {acc:.3f} (target ≥ {ACCURACY_TARGET:.2f}), "
            f"macro-F1 {f1:.3f} (target ≥ {MACRO_F1_TARGET:.2f})"
        )
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--baseline-only", action="store_true", help="evaluate the keyword baseline alone")
    parser.add_argument("--errors", action="store_true", help="list every misclassified utterance")
    parser.add_argument("--data", type=Path, default=EVAL_PATH, help="the labelled JSONL set")
    args = parser.parse_args(argv)

    rows = load_jsonl(args.data)
    problems = check_rows(rows, load_jsonl(TRAINING_PATH))
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    languages = Counter(row["language"] for row in rows)
    print(
        f"{args.data.relative_to(BASE_DIR) if args.data.is_relative_to(BASE_DIR) else args.data}: "
        f"{len(rows)} utterances ({', '.join(f'{k} {v}' for k, v in sorted(languages.items()))}), "
        f"{len(set(row['intent'] for row in rows))} intents; none is a training example"
    )

    runs = []
    if not args.baseline_only:
        runs.append(run_router(rows, load_router()))
    runs.append(run_keyword_baseline(rows))
    verdicts = {run.name: print_report(run, rows, show_errors=args.errors) for run in runs}

    print()
    for name, passed in verdicts.items():
        outcome = "meets" if passed else "misses"
        print(f"{'PASS' if passed else 'FAIL'} {name}: {outcome} the targets in every language")
    return 0


if __name__ == "__main__":
    sys.exit(main())
