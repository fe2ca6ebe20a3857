"""Ingestion tasks: the tenant's task, the global library's task, idempotence, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge import services, tasks
from knowledge.models import Chunk, Document
from morvo.celery import TenantGone


def test_tenant_task_ingests_the_document(two_tenants: Any) -> None:
    result = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nReturns in 14 days.")

    assert (
        tasks.knowledge_document_ingest_task.apply(args=(two_tenants.a.tenant.pk, result.document.pk)).get() == "ready"
    )
    assert Chunk.objects.for_tenant(two_tenants.a.tenant).count() == 1
    # Run again (a retry, a duplicate delivery): nothing more happens.
    assert (
        tasks.knowledge_document_ingest_task.apply(args=(two_tenants.a.tenant.pk, result.document.pk)).get() == "ready"
    )
    assert Chunk.objects.for_tenant(two_tenants.a.tenant).count() == 1


def test_task_with_another_tenants_id_touches_nothing(two_tenants: Any) -> None:
    result = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nReturns in 14 days.")

    outcome = tasks.knowledge_document_ingest_task.apply(args=(two_tenants.b.tenant.pk, result.document.pk)).get()

    assert outcome == "missing"
    assert Document.objects.for_tenant(two_tenants.a.tenant).get().status == "pending"
    assert not Chunk.objects.all_tenants().exists()


def test_global_task_ingests_only_global_documents(two_tenants: Any) -> None:
    library = services.document_upload(None, filename="r.md", content=b"# Ramadan\n\nPlan early.")
    private = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nPrivate.")

    assert tasks.knowledge_global_document_ingest_task.apply(args=(library.document.pk,)).get() == "ready"
    assert tasks.knowledge_global_document_ingest_task.apply(args=(private.document.pk,)).get() == "missing"
    assert Chunk.objects.global_only().count() == 1
    assert Document.objects.for_tenant(two_tenants.a.tenant).get().status == "pending"


def test_task_of_a_deleted_tenant_is_dropped(two_tenants: Any) -> None:
    with pytest.raises(TenantGone):
        tasks.knowledge_document_ingest_task.apply(args=(987654, 1), throw=True).get()


def test_upload_schedules_the_right_task_after_commit(
    two_tenants: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(tasks.knowledge_document_ingest_task, "delay", lambda *args: sent.append(("tenant", args)))
    monkeypatch.setattr(
        tasks.knowledge_global_document_ingest_task, "delay", lambda *args: sent.append(("global", args))
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        own = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nText.")
        library = services.document_upload(None, filename="g.md", content=b"# G\n\nText.")
    assert sent == []  # nothing is sent before the commit
    for callback in callbacks:
        callback()

    assert sent == [("tenant", (two_tenants.a.tenant.pk, own.document.pk)), ("global", (library.document.pk,))]
