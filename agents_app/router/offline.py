"""The offline intent classifier: nearest labelled examples in two spaces.

1. Meaning: the multilingual Universal Sentence Encoder (``knowledge.embedders``) embeds the
   message and every labelled example in ``data/examples.jsonl`` (Arabic in four varieties
   and English). Arabic and English paraphrases land near each other, so an English example
   helps an Arabic question and the reverse.
2. Form: hashed character n-grams (2 to 4) of the normalised text, TF-IDF weighted. Dialect
   words the encoder has rarely seen ("ابغى", "عايز", "بدي", "وين") are caught here.

An intent's score is the mean similarity of its ``top_k`` (5) nearest examples, mixing the
two spaces with ``lexical_weight`` (0.65 on the character side); a softmax over intents gives
the confidence. Both were chosen by leave-one-out over the training examples only
(``tune()``), never on the evaluation set in ``eval/data``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morvo.text import normalize_arabic

EXAMPLES_PATH = Path(__file__).with_name("data") / "examples.jsonl"
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
_HASH_DIMENSIONS = 1 << 14


@dataclass(frozen=True)
class IntentScore:
    intent: str
    confidence: float
    scores: dict[str, float]


def load_examples(path: Path = EXAMPLES_PATH) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    unknown = {row["intent"] for row in rows} - set(INTENTS)
    if unknown:
        raise ValueError(f"unknown intents in {path}: {sorted(unknown)}")
    return rows


def _ngrams(text: str) -> list[str]:
    padded = f" {normalize_arabic(text)} "
    grams: list[str] = []
    for size in (2, 3, 4):
        grams.extend(padded[index : index + size] for index in range(len(padded) - size + 1))
    return grams


def _hash(gram: str) -> int:
    return zlib.crc32(gram.encode("utf-8")) & (_HASH_DIMENSIONS - 1)


class OfflineIntentClassifier:
    def __init__(
        self,
        examples: Sequence[dict[str, Any]],
        *,
        encode: Any = None,
        top_k: int = 5,
        lexical_weight: float = 0.65,
        temperature: float = 0.04,
    ) -> None:
        if encode is None:
            from knowledge.embedders import local_encode

            encode = local_encode
        self._encode = encode
        self.top_k = top_k
        self.lexical_weight = lexical_weight
        self.temperature = temperature
        self.texts = [row["text"] for row in examples]
        self.labels = np.array([INTENTS.index(row["intent"]) for row in examples])
        self.semantic = self._embed_examples(encode)
        documents = [_ngrams(text) for text in self.texts]
        document_frequency = np.zeros(_HASH_DIMENSIONS, dtype=np.float32)
        for grams in documents:
            for bucket in {_hash(gram) for gram in grams}:
                document_frequency[bucket] += 1
        self.idf = np.log((1 + len(documents)) / (1 + document_frequency)).astype(np.float32) + 1
        self.lexical = np.stack([self._lexical_vector(grams) for grams in documents])
        # Bucket-major copy: a query's few hundred buckets are then contiguous rows to gather.
        self.lexical_by_bucket = np.ascontiguousarray(self.lexical.T)

    def _embed_examples(self, encode: Any) -> np.ndarray:
        """The examples' embeddings, cached on disk by content (a new process, a test run or a
        worker child then loads them in milliseconds instead of encoding ~800 sentences)."""
        inputs = [self._encoder_input(text) for text in self.texts]
        cache = None
        if getattr(encode, "__module__", "") == "knowledge.embedders":
            from django.conf import settings

            from knowledge.embedders import LOCAL_MODEL_NAME

            digest = hashlib.sha256("\n".join([LOCAL_MODEL_NAME, *inputs]).encode("utf-8")).hexdigest()[:20]
            cache = Path(settings.VAR_DIR) / "cache" / f"router-examples-{digest}.npy"
            if cache.exists():
                vectors = np.load(cache)
                if vectors.shape[0] == len(inputs):
                    return np.asarray(vectors, dtype=np.float32)
        vectors = np.asarray(encode(inputs), dtype=np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(partial, vectors)
            partial.replace(cache)  # atomic: another process never reads half a file
        return vectors

    @staticmethod
    def _encoder_input(text: str) -> str:
        # Diacritics and tatweel only add noise for the encoder; letter forms are kept, since
        # the encoder learnt real spelling.
        return normalize_arabic(text)

    def _lexical_vector(self, grams: list[str]) -> np.ndarray:
        vector = np.zeros(_HASH_DIMENSIONS, dtype=np.float32)
        for gram in grams:
            vector[_hash(gram)] += 1
        vector = np.log1p(vector) * self.idf
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def similarities(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        query = np.asarray(self._encode([self._encoder_input(text)]), dtype=np.float32)[0]
        lexical_query = self._lexical_vector(_ngrams(text))
        # A message touches a few hundred of the 16k buckets: multiply only those columns.
        buckets = np.flatnonzero(lexical_query)
        return self.semantic @ query, lexical_query[buckets] @ self.lexical_by_bucket[buckets]

    def score(self, semantic: np.ndarray, lexical: np.ndarray, exclude: int | None = None) -> IntentScore:
        combined = (1 - self.lexical_weight) * semantic + self.lexical_weight * lexical
        if exclude is not None:
            combined = combined.copy()
            combined[exclude] = -np.inf
        scores = np.full(len(INTENTS), -1.0, dtype=np.float32)
        for index in range(len(INTENTS)):
            mine = combined[self.labels == index]
            mine = mine[np.isfinite(mine)]
            if mine.size:
                top = np.sort(mine)[-self.top_k :]
                scores[index] = float(top.mean())
        exponentials = np.exp((scores - scores.max()) / self.temperature)
        probabilities = exponentials / exponentials.sum()
        best = int(np.argmax(probabilities))
        return IntentScore(
            intent=INTENTS[best],
            confidence=round(float(probabilities[best]), 4),
            scores={intent: round(float(scores[index]), 4) for index, intent in enumerate(INTENTS)},
        )

    def classify(self, text: str) -> IntentScore:
        semantic, lexical = self.similarities(text)
        return self.score(semantic, lexical)

    def leave_one_out_accuracy(self) -> float:
        """Accuracy on the training examples, each classified without itself."""
        lexical_all = self.lexical @ self.lexical.T
        semantic_all = self.semantic @ self.semantic.T
        correct = 0
        for index in range(len(self.texts)):
            result = self.score(semantic_all[index], lexical_all[index], exclude=index)
            correct += INTENTS.index(result.intent) == self.labels[index]
        return correct / len(self.texts)

    def tune(self) -> dict[str, float]:
        """Pick ``top_k`` and ``lexical_weight`` by leave-one-out accuracy on the training set."""
        best = (-1.0, self.top_k, self.lexical_weight)
        for top_k in (1, 2, 3, 5):
            for weight in (0.0, 0.15, 0.25, 0.35, 0.5, 0.65):
                self.top_k, self.lexical_weight = top_k, weight
                accuracy = self.leave_one_out_accuracy()
                if accuracy > best[0]:
                    best = (accuracy, top_k, weight)
        _, self.top_k, self.lexical_weight = best
        return {"accuracy": best[0], "top_k": best[1], "lexical_weight": best[2]}


_lock = threading.Lock()
_classifier: OfflineIntentClassifier | None = None


def classifier() -> OfflineIntentClassifier:
    """The process-wide classifier, built on first use (about a second: it embeds every example)."""
    global _classifier
    if _classifier is None:
        with _lock:
            if _classifier is None:
                _classifier = OfflineIntentClassifier(load_examples())
    return _classifier
