from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from knowledge import services
from knowledge.models import Document


@pytest.fixture
def ingest_inline(monkeypatch: Any) -> list[tuple[int | None, int]]:
    """Uploads are ingested right after commit in this process instead of by the worker;
    the list records what was scheduled (tenant id, document id)."""
    scheduled: list[tuple[int | None, int]] = []

    def run(tenant: Any, document_id: int) -> None:
        scheduled.append((tenant.pk if tenant is not None else None, document_id))
        services.document_ingest(tenant, document_id)

    class RunOnCommitNow:
        """The test's transaction never commits: run what the service defers at once."""

        atomic = staticmethod(transaction.atomic)

        @staticmethod
        def on_commit(callback: Any, **kwargs: Any) -> None:
            callback()

    monkeypatch.setattr(services, "document_schedule_ingest", run)
    monkeypatch.setattr(services, "transaction", RunOnCommitNow)
    return scheduled


def upload(tenant: Any, filename: str, text: str | bytes, **kwargs: Any) -> Document:
    content = text.encode() if isinstance(text, str) else text
    result = services.document_upload(tenant, filename=filename, content=content, ingest_now=True, **kwargs)
    return result.document
