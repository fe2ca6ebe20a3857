"""Ingestion in the worker. Both tasks are idempotent: ingestion claims the document (pending
to processing) with a conditional update, so a retried or duplicated task does nothing."""

from __future__ import annotations

from celery import shared_task

from knowledge import services
from morvo.celery import tenant_task
from morvo.models import Tenant


@tenant_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def knowledge_document_ingest_task(tenant: Tenant, document_id: int) -> str:
    """Ingest one of the tenant's documents."""
    return services.document_ingest(tenant, document_id)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def knowledge_global_document_ingest_task(document_id: int) -> str:
    """Ingest a document of the global library. It belongs to no tenant, so no tenant is
    active here and the service reads it through ``Document.objects.global_only()``."""
    return services.document_ingest(None, document_id)
