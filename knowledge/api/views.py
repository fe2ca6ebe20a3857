"""The knowledge REST API: documents (upload, list, retrieve with status, delete) and search.

Every lookup is scoped: the token's tenant's documents and the global library (which can be
read, never deleted); another tenant's document is the same 404 as a missing one.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from knowledge import selectors, services
from knowledge.api.serializers import (
    DocumentSerializer,
    DocumentUploadSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
)
from knowledge.models import Document
from morvo.api.views import TenantAPIView, TenantModelViewSet

NOT_FOUND = OpenApiResponse(description="No such document (or another tenant's).")
INVALID = OpenApiResponse(description="Invalid input, in the API's error format.")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The file is too large.")
    default_code = "file_too_large"


class UnsupportedFileType(exceptions.UnsupportedMediaType):
    default_code = "unsupported_file_type"

    def __init__(self, detail: str) -> None:
        exceptions.APIException.__init__(self, detail, self.default_code)


# Multipart framing around the file (boundaries, headers, the title field).
MULTIPART_SLACK_BYTES = 64 * 1024


@extend_schema_view(
    list=extend_schema(
        summary="List knowledge documents",
        description="The business's documents and the global library (is_global), newest first. "
        "Filter with scope=own or scope=global, status, document_type, language.",
        parameters=[
            OpenApiParameter("scope", str, enum=["own", "global"], description="Only own or only global documents."),
        ],
    ),
    retrieve=extend_schema(
        summary="A knowledge document with its ingestion status", responses={200: DocumentSerializer, 404: NOT_FOUND}
    ),
)
class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantModelViewSet):
    model = Document
    serializer_class = DocumentSerializer
    filterset_fields = ["status", "document_type", "language"]
    search_fields = ["title", "source"]
    ordering_fields = ["created_at", "title"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_parsers(self) -> list[Any]:
        if getattr(self, "action", None) == "create" or (
            self.request is not None and self.request.method == "POST"  # type: ignore[comparison-overlap]
        ):
            return [MultiPartParser()]
        return super().get_parsers()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset()
        queryset = selectors.documents_visible(self.tenant).defer("content")
        scope = self.request.query_params.get("scope") if getattr(self, "action", None) == "list" else None
        if scope == "own":
            queryset = queryset.filter(tenant=self.tenant)
        elif scope == "global":
            queryset = queryset.filter(tenant__isnull=True)
        return queryset

    @extend_schema(
        summary="Upload a document",
        description="Multipart: the file in `file`, an optional `title`. Ingestion runs in the background: "
        "poll the document until its status is ready (searchable) or failed (with the reason). "
        "The same content uploaded again answers 200 with the document already stored.",
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={
            201: DocumentSerializer,
            200: OpenApiResponse(DocumentSerializer, description="This content is already stored."),
            400: INVALID,
            413: OpenApiResponse(description="The file is over the size limit."),
            415: OpenApiResponse(description="The file type is not supported."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from django.conf import settings

        limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + MULTIPART_SLACK_BYTES:  # refuse before reading the body
            raise PayloadTooLarge(_("The file is larger than the limit of %(limit)s bytes.") % {"limit": limit})
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size is not None and upload.size > limit:
            raise PayloadTooLarge(_("The file is larger than the limit of %(limit)s bytes.") % {"limit": limit})
        try:
            result = services.document_upload(
                self.tenant,
                filename=upload.name or "",
                content=upload.read(),
                title=serializer.validated_data.get("title", ""),
                content_type=getattr(upload, "content_type", None),
            )
        except services.KnowledgeError as error:
            if error.code == "too_large":
                raise PayloadTooLarge(str(error)) from error
            raise UnsupportedFileType(str(error)) from error
        return Response(
            DocumentSerializer(result.document).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Delete a document and its chunks",
        responses={
            204: None,
            403: OpenApiResponse(description="A global library document cannot be deleted."),
            404: NOT_FOUND,
        },
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        document = self.get_object()
        if document.is_global:
            raise exceptions.PermissionDenied(_("Documents of the global library cannot be deleted."))
        services.document_delete(self.tenant, document.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class KnowledgeSearchView(TenantAPIView):
    """Hybrid search over the business's documents and the global library."""

    serializer_class = SearchResultSerializer
    filter_backends: list[Any] = []
    pagination_class = None

    @extend_schema(
        summary="Search the knowledge base",
        description="Meaning (multilingual embeddings: an Arabic question finds English text and the reverse) "
        "and keywords, fused. Each result cites its document and position.",
        parameters=[SearchQuerySerializer],
        responses={200: SearchResultSerializer, 400: INVALID},
    )
    def get(self, request: Request) -> Response:
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        hits = selectors.knowledge_search(
            self.tenant,
            data["q"],
            k=data["k"],
            document_types=sorted(data["type"]) if data.get("type") else None,
            language=data.get("language"),
        )
        body = {"query": data["q"], "count": len(hits), "results": [hit.as_dict() for hit in hits]}
        return Response(SearchResultSerializer(body).data)
