"""Serializers of the knowledge API: parse and shape only; the rules live in
``knowledge.services`` and ``knowledge.selectors``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from knowledge.models import Document, DocumentType, Language
from knowledge.selectors import MAX_K
from morvo.api.fields import CachedFieldsModelSerializer, RejectUnknownFieldsMixin


class DocumentSerializer(CachedFieldsModelSerializer):
    is_global = serializers.BooleanField(read_only=True, help_text="A document of the global library (read-only).")
    failure_reason = serializers.CharField(read_only=True, help_text="Why ingestion failed (status failed).")

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "source",
            "document_type",
            "region",
            "language",
            "status",
            "failure_reason",
            "chunk_count",
            "size_bytes",
            "embedding_model",
            "is_global",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DocumentUploadSerializer(RejectUnknownFieldsMixin, serializers.Serializer[Any]):
    file = serializers.FileField(
        allow_empty_file=False,
        use_url=False,
        help_text="Plain text, Markdown, HTML, PDF, DOCX or CSV (by its extension).",
    )
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Defaults to the file name."
    )


class SearchQuerySerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=500, help_text="What to look for, in Arabic or English.")
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=5, help_text="How many results.")
    type = serializers.MultipleChoiceField(  # type: ignore[assignment]  # the query parameter's name
        choices=DocumentType.choices, required=False, help_text="Only these document types (repeat the parameter)."
    )
    language = serializers.ChoiceField(
        choices=Language.choices, required=False, help_text="Only chunks in this language."
    )


class SearchHitSerializer(serializers.Serializer[Any]):
    document_id = serializers.IntegerField()
    title = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the field named "source", not Field.source
    document_type = serializers.CharField()
    language = serializers.CharField()
    chunk_id = serializers.IntegerField()
    position = serializers.IntegerField(help_text="The chunk's place in its document, from 0.")
    snippet = serializers.CharField()
    score = serializers.FloatField(help_text="Fused rank score, 0–1 (1: first by meaning and by keywords).")


class SearchResultSerializer(serializers.Serializer[Any]):
    query = serializers.CharField()
    count = serializers.IntegerField()
    results = SearchHitSerializer(many=True)
