"""Writes of the knowledge base: uploads, ingestion, deletion, reindexing and the seeds.

``tenant`` is first everywhere; ``None`` means the global library (documents every tenant
reads), which only maintenance code and the seed write.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from knowledge import ingestion
from knowledge.embedders import EmbeddingError, get_embedder
from knowledge.models import Chunk, Document

if TYPE_CHECKING:
    from morvo.models import Tenant

logger = logging.getLogger(__name__)

SEED_DIR = Path(__file__).resolve().parent / "seed"
# A document stuck in "processing" this long was abandoned by a worker that died.
PROCESSING_STALE_AFTER = timedelta(minutes=10)
EMBED_BATCH = 64


class KnowledgeError(Exception):
    """A refused upload. ``code`` names the reason; the API maps it to a status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _documents(tenant: Tenant | None) -> Any:
    return Document.objects.for_tenant(tenant) if tenant is not None else Document.objects.global_only()


def _chunks(tenant: Tenant | None) -> Any:
    return Chunk.objects.for_tenant(tenant) if tenant is not None else Chunk.objects.global_only()


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool


def document_upload(
    tenant: Tenant | None,
    *,
    filename: str,
    content: bytes,
    title: str = "",
    content_type: str | None = None,
    region: str = "",
    source: str = "",
    ingest_now: bool = False,
) -> UploadResult:
    """Store an upload and schedule its ingestion (after commit). The same bytes uploaded
    again return the document already stored (``created`` is False) and schedule nothing.

    Raises :class:`KnowledgeError` ``unsupported_type`` or ``too_large`` before writing."""
    from django.utils.translation import gettext

    document_type = ingestion.detect_type(filename, content_type)
    if document_type is None:
        raise KnowledgeError(
            "unsupported_type",
            gettext("Unsupported file type. Upload one of: %(types)s.")
            % {"types": ", ".join(ingestion.SUPPORTED_EXTENSIONS)},
        )
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if len(content) > limit:
        raise KnowledgeError(
            "too_large", gettext("The file is larger than the limit of %(limit)s bytes.") % {"limit": limit}
        )
    content_hash = hashlib.sha256(content).hexdigest()
    existing = _documents(tenant).filter(content_hash=content_hash).first()
    if existing is not None:
        return UploadResult(existing, created=False)
    name = Path(filename or "").name
    try:
        with transaction.atomic():
            document = Document.objects.create(
                tenant=tenant,
                title=(title or Path(name).stem or name)[:300],
                source=(source or name)[:500],
                document_type=document_type,
                region=region,
                content=content,
                content_hash=content_hash,
                size_bytes=len(content),
            )
            if not ingest_now:
                transaction.on_commit(lambda: document_schedule_ingest(tenant, document.pk))
    except IntegrityError:
        # The same bytes arrived twice at once: the other request stored them.
        return UploadResult(_documents(tenant).get(content_hash=content_hash), created=False)
    if ingest_now:
        document_ingest(tenant, document.pk)
        document.refresh_from_db()
    return UploadResult(document, created=True)


def document_schedule_ingest(tenant: Tenant | None, document_id: int) -> None:
    from knowledge import tasks

    if tenant is not None:
        tasks.knowledge_document_ingest_task.delay(tenant.pk, document_id)
    else:
        tasks.knowledge_global_document_ingest_task.delay(document_id)


def _claim(tenant: Tenant | None, document_id: int) -> bool:
    """Move the document to processing, once: a pending one, or one a dead worker left."""
    stale = timezone.now() - PROCESSING_STALE_AFTER
    claimable = Q(status=Document.Status.PENDING) | Q(status=Document.Status.PROCESSING, updated_at__lt=stale)
    updated: int = (
        _documents(tenant)
        .filter(claimable, pk=document_id)
        .update(status=Document.Status.PROCESSING, updated_at=timezone.now())
    )
    return updated == 1


def _fail(tenant: Tenant | None, document_id: int, code: str, detail: str) -> None:
    _documents(tenant).filter(pk=document_id, status=Document.Status.PROCESSING).update(
        status=Document.Status.FAILED,
        failure_code=code,
        failure_detail=detail[:1000],
        chunk_count=0,
        updated_at=timezone.now(),
    )


def embedding_text(title: str, heading: str, text: str) -> str:
    """What the embedder sees for a chunk: its document's title and section give the chunk
    its subject ("returns", "Ramadan") even when its own sentences do not name it."""
    context = " — ".join(part for part in (title, heading) if part)
    return f"{context}\n{text}" if context else text


def document_ingest(tenant: Tenant | None, document_id: int) -> str:
    """Parse, chunk, embed and publish one document; returns its final status.

    Idempotent: a document that is not pending (ready, failed, or being processed by another
    worker) is left alone. Parsing and embedding happen outside any transaction; the chunks
    are written together with the ``ready`` status in one transaction, so a search sees all
    of a document or none of it, and a failed document has no chunks at all."""
    if not _claim(tenant, document_id):
        current = _documents(tenant).filter(pk=document_id).values_list("status", flat=True).first()
        return str(current or "missing")
    document = _documents(tenant).get(pk=document_id)
    try:
        blocks = ingestion.parse(document.document_type, bytes(document.content))
        drafts = ingestion.chunk_blocks(blocks)
        embedder = get_embedder()
        texts = [embedding_text(document.title, draft.heading, draft.text) for draft in drafts]
        vectors: list[Any] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.extend(embedder.encode_documents(texts[start : start + EMBED_BATCH]))
    except ingestion.IngestionError as error:
        logger.info("knowledge document %s failed: %s", document_id, error)
        _fail(tenant, document_id, error.code, error.detail)
        return Document.Status.FAILED
    except EmbeddingError as error:
        logger.warning("knowledge document %s could not be embedded: %s", document_id, error)
        _fail(tenant, document_id, "embedding_failed", str(error))
        return Document.Status.FAILED
    language = ingestion.dominant_language(drafts)
    try:
        return _publish(tenant, document, drafts, vectors, language, embedder.name)
    except Exception as error:
        # Nothing of it was written (the transaction rolled back); say so on the document
        # instead of leaving it "processing" for ever. The error still reaches the worker's log.
        _fail(tenant, document_id, "unexpected", type(error).__name__)
        raise


def _publish(
    tenant: Tenant | None,
    document: Document,
    drafts: list[ingestion.ChunkDraft],
    vectors: list[Any],
    language: str,
    model_name: str,
) -> str:
    document_id = document.pk
    with transaction.atomic():
        locked = _documents(tenant).select_for_update().filter(pk=document_id, status=Document.Status.PROCESSING)
        if not locked.exists():  # deleted meanwhile
            return "missing"
        _chunks(tenant).filter(document_id=document_id).delete()
        Chunk.objects.bulk_create(
            [
                Chunk(
                    tenant=tenant,
                    document_id=document_id,
                    position=draft.position,
                    heading=draft.heading,
                    text=draft.text,
                    document_type=document.document_type,
                    language=draft.language,
                    keywords=ingestion.keyword_form(f"{document.title} {draft.heading} {draft.text}"),
                    embedding=vector,
                    embedding_model=model_name,
                )
                for draft, vector in zip(drafts, vectors, strict=True)
            ],
            batch_size=500,
        )
        _chunks(tenant).filter(document_id=document_id).update(search_vector=SearchVector("keywords", config="simple"))
        locked.update(
            status=Document.Status.READY,
            language=language,
            chunk_count=len(drafts),
            embedding_model=model_name,
            failure_code="",
            failure_detail="",
            updated_at=timezone.now(),
        )
    return Document.Status.READY


def document_delete(tenant: Tenant, document_id: int) -> bool:
    """Delete one of the tenant's documents with its chunks (never a global one)."""
    with transaction.atomic():
        deleted, _ = Document.objects.for_tenant(tenant).filter(pk=document_id).delete()
    return deleted > 0


def document_reprocess(tenant: Tenant | None, document_id: int) -> bool:
    """Send a failed document through ingestion again (after a fix, or a transient failure)."""
    with transaction.atomic():
        updated = (
            _documents(tenant)
            .filter(pk=document_id, status=Document.Status.FAILED)
            .update(status=Document.Status.PENDING, failure_code="", failure_detail="", updated_at=timezone.now())
        )
        if updated:
            transaction.on_commit(lambda: document_schedule_ingest(tenant, document_id))
    return bool(updated)


# --- reindexing -------------------------------------------------------------------------------


def chunks_needing_reindex(model_name: str) -> Any:
    """Every chunk (all tenants and the library) embedded by another model. Maintenance only."""
    return Chunk.objects.all_tenants().exclude(embedding_model=model_name)


def chunks_reindex_batch(batch_size: int = 256) -> int:
    """Re-embed the next batch of chunks whose model is not the configured one; returns how
    many were done (0 when everything is current). Each batch commits on its own, so an
    interrupted reindex resumes where it stopped; a chunk is only ever compared with
    vectors of its own model, so search stays correct (keyword side meanwhile) throughout."""
    embedder = get_embedder()
    with transaction.atomic():
        batch = list(
            chunks_needing_reindex(embedder.name)
            .select_related("document")
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))[:batch_size]
        )
        if not batch:
            return 0
        vectors = embedder.encode_documents(
            [embedding_text(chunk.document.title, chunk.heading, chunk.text) for chunk in batch]
        )
        for chunk, vector in zip(batch, vectors, strict=True):
            chunk.embedding = vector
            chunk.embedding_model = embedder.name
        Chunk.objects.all_tenants().bulk_update(batch, ["embedding", "embedding_model"])
        document_ids = {chunk.document_id for chunk in batch}
        stale = set(
            chunks_needing_reindex(embedder.name)
            .filter(document_id__in=document_ids)
            .values_list("document_id", flat=True)
        )
        Document.objects.all_tenants().filter(pk__in=document_ids - stale).update(embedding_model=embedder.name)
    return len(batch)


# --- seeds --------------------------------------------------------------------------------------


def _seed_files(folder: Path) -> Iterable[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix in {".md", ".txt", ".csv", ".html"})


def _seed_title(path: Path, raw: bytes) -> str:
    for line in raw.decode("utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ")


def _seed_region(raw: bytes) -> str:
    for line in raw.decode("utf-8").splitlines()[:3]:
        if line.lower().startswith("<!-- region:"):
            return line.split(":", 1)[1].strip(" ->")
    return ""


def _seed(tenant: Tenant | None, folder: Path) -> dict[str, int]:
    """Load every file of ``folder`` as a document, synchronously. A file already loaded
    with the same bytes is skipped; a file whose bytes changed replaces its old version."""
    counts = {"created": 0, "unchanged": 0, "replaced": 0}
    for path in _seed_files(folder):
        raw = path.read_bytes()
        source = f"morvo-seed:{folder.name}/{path.name}"
        content_hash = hashlib.sha256(raw).hexdigest()
        current = _documents(tenant).filter(source=source).first()
        if current is not None and current.content_hash == content_hash and current.status == Document.Status.READY:
            counts["unchanged"] += 1
            continue
        if current is not None:
            _documents(tenant).filter(pk=current.pk).delete()
            counts["replaced"] += 1
        else:
            counts["created"] += 1
        result = document_upload(
            tenant,
            filename=path.name,
            content=raw,
            title=_seed_title(path, raw),
            region=_seed_region(raw),
            source=source,
            ingest_now=True,
        )
        if not result.created and result.document.status != Document.Status.READY:
            document_ingest(tenant, result.document.pk)
    return counts


def knowledge_seed_global() -> dict[str, int]:
    """The global MENA marketing library (idempotent)."""
    return _seed(None, SEED_DIR / "global")


def knowledge_seed_tenant(tenant: Tenant) -> dict[str, int]:
    """The demo shop's own documents (shipping, returns, store FAQ) for ``tenant`` (idempotent)."""
    return _seed(tenant, SEED_DIR / "demo")
