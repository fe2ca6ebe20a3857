"""Knowledge uploads in the back office.

Members see their selected tenant's documents (superusers every tenant's and the global
library); another tenant's document is a 404. Adding a document is an upload: the file goes
through ``knowledge.services.document_upload`` (the API's rules: type, size, duplicates) and
is ingested by the worker; the list shows each document's status and, when it failed, why.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from knowledge import services
from knowledge.ingestion import SUPPORTED_EXTENSIONS
from knowledge.models import Chunk, Document
from morvo import tenancy
from morvo.admin_mixins import TenantScopedAdminMixin, can_manage


class DocumentUploadForm(forms.ModelForm):  # type: ignore[type-arg]
    file = forms.FileField(
        label=_("file"),
        help_text=_("Plain text, Markdown, HTML, PDF, DOCX or CSV."),
    )

    class Meta:
        model = Document
        fields = ["title", "region"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["file"].widget.attrs["accept"] = ",".join(SUPPORTED_EXTENSIONS)
        self.upload_result: services.UploadResult | None = None

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        upload = cleaned.get("file")
        tenant = tenancy.current_tenant()
        if upload is None:
            return cleaned
        if tenant is None:
            raise forms.ValidationError(gettext("Select a business first."))
        try:
            self.upload_result = services.document_upload(
                tenant,
                filename=upload.name or "",
                content=upload.read(),
                title=cleaned.get("title") or "",
                content_type=getattr(upload, "content_type", None),
                region=cleaned.get("region") or "",
            )
        except services.KnowledgeError as error:
            self.add_error("file", str(error))
        return cleaned


class ChunkInline(TenantScopedAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = Chunk
    fields = ["position", "heading", "language", "text", "embedding_model"]
    readonly_fields = ["position", "heading", "language", "text", "embedding_model"]
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> Any:
        # Hangs off a document already loaded through the scoped admin queryset.
        return Chunk.objects.all_tenants().defer("embedding", "search_vector", "keywords")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(TenantScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "document_type", "language", "status", "failure_reason", "chunk_count", "created_at"]
    list_filter = ["status", "document_type", "language"]
    search_fields = ["title", "source"]
    ordering = ["-created_at"]
    readonly_fields = [
        "source",
        "document_type",
        "language",
        "status",
        "failure_reason",
        "chunk_count",
        "size_bytes",
        "embedding_model",
        "created_at",
        "updated_at",
    ]
    inlines = [ChunkInline]
    actions = ["reprocess_failed"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("content")

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        return [*columns, "tenant"] if request.user.is_superuser else columns

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = DocumentUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["file", "title", "region"]
        return ["title", "region", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.inlines if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.tenant_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.tenant_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        with tenancy.tenant_context(tenant):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        result = form.upload_result
        form.instance = result.document
        if not result.created:
            messages.info(request, gettext("This content was already uploaded; the existing document is kept."))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        messages.success(request, gettext("The document was uploaded; it becomes searchable once it is ready."))
        return HttpResponseRedirect(reverse("admin:knowledge_document_changelist"))

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # the upload service stored the document; the admin log needs no second record

    @admin.action(description=_("Process failed documents again"))
    def reprocess_failed(self, request: HttpRequest, queryset: Any) -> None:
        if not can_manage(request):
            messages.error(request, gettext("Your role in this business cannot change this."))
            return
        count = 0
        for document in queryset.filter(status=Document.Status.FAILED):
            count += services.document_reprocess(document.tenant if document.tenant_id else None, document.pk)
        messages.success(request, gettext("%(count)s documents will be processed again.") % {"count": count})
