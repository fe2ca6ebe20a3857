"""Documents and their chunks.

A document belongs to one tenant, or to no tenant: the global MENA marketing library every
tenant may read. Both models use the fail-closed tenant manager (an unscoped query raises);
``visible_to(tenant)`` is the one way to read a tenant's rows together with the global ones,
and ``global_only()`` the way to read the library alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from pgvector.django import HnswIndex, VectorField

from morvo.tenancy import TenantScopedManager, TenantScopedQuerySet

if TYPE_CHECKING:
    from morvo.models import Tenant

EMBEDDING_DIMENSIONS = 512


class KnowledgeQuerySet(TenantScopedQuerySet[Any]):
    def visible_to(self, tenant: Tenant) -> KnowledgeQuerySet:
        """The tenant's own rows and the global ones (never another tenant's)."""
        if tenant is None:
            raise ValueError("visible_to() needs a tenant")
        clone = self.filter(Q(tenant=tenant) | Q(tenant__isnull=True))
        clone._refused_reason = None
        return clone  # type: ignore[return-value]

    def global_only(self) -> KnowledgeQuerySet:
        clone = self.filter(tenant__isnull=True)
        clone._refused_reason = None
        return clone  # type: ignore[return-value]


class KnowledgeManager(TenantScopedManager[Any]):
    def _unscoped(self) -> KnowledgeQuerySet:
        return KnowledgeQuerySet(self.model, using=self._db, hints=self._hints)  # type: ignore[attr-defined]

    def visible_to(self, tenant: Tenant) -> KnowledgeQuerySet:
        return self._unscoped().visible_to(tenant)

    def global_only(self) -> KnowledgeQuerySet:
        return self._unscoped().global_only()


class DocumentType(models.TextChoices):
    TEXT = "text", _("Plain text")
    MARKDOWN = "markdown", _("Markdown")
    HTML = "html", _("HTML")
    PDF = "pdf", _("PDF")
    DOCX = "docx", _("Word (DOCX)")
    CSV = "csv", _("CSV")


class Language(models.TextChoices):
    ARABIC = "ar", _("Arabic")
    ENGLISH = "en", _("English")


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    tenant = models.ForeignKey(
        "morvo.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty for the global library every business may read."),
    )
    title = models.CharField(_("title"), max_length=300)
    source = models.CharField(_("source"), max_length=500, blank=True, help_text=_("File name or address."))
    document_type = models.CharField(_("type"), max_length=10, choices=DocumentType.choices)
    region = models.CharField(_("region"), max_length=60, blank=True)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_detail = models.TextField(_("failure detail"), blank=True)
    content = models.BinaryField(_("content"), editable=False)
    content_hash = models.CharField(_("content hash"), max_length=64, editable=False)
    size_bytes = models.PositiveIntegerField(_("size in bytes"), default=0)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    embedding_model = models.CharField(_("embedding model"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects: Any = KnowledgeManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("knowledge document")
        verbose_name_plural = _("knowledge documents")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "content_hash"],
                condition=Q(tenant__isnull=False),
                name="knowledge_document_unique_tenant_content",
            ),
            models.UniqueConstraint(
                fields=["content_hash"],
                condition=Q(tenant__isnull=True),
                name="knowledge_document_unique_global_content",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="knowledge_doc_tenant_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_global(self) -> bool:
        return self.tenant_id is None

    @property
    def failure_reason(self) -> str:
        from knowledge.ingestion import failure_message

        return failure_message(self.failure_code, self.failure_detail) if self.failure_code else ""


class Chunk(models.Model):
    """A searchable piece of a document. ``tenant``, ``document_type`` and ``language`` are
    copied from the document so a search filters one table; a document's chunks are written
    in the transaction that marks it ready, so it is searchable all at once or not at all."""

    tenant = models.ForeignKey("morvo.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField(_("position"))
    heading = models.CharField(_("heading"), max_length=300, blank=True)
    text = models.TextField(_("text"))
    document_type = models.CharField(_("type"), max_length=10, choices=DocumentType.choices)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    keywords = models.TextField(
        _("keyword form"), help_text=_("Normalised, lightly stemmed text for full-text search.")
    )
    search_vector = SearchVectorField(null=True)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(_("embedding model"), max_length=120)

    objects: Any = KnowledgeManager()

    class Meta:
        ordering = ["document_id", "position"]
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="knowledge_chunk_unique_position"),
        ]
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="knowledge_chunk_search_gin"),
            models.Index(fields=["tenant", "document_type", "language"], name="knowledge_chunk_filters"),
            models.Index(fields=["embedding_model", "id"], name="knowledge_chunk_model_id"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"
