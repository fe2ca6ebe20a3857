"""Parsing by structure, chunking with overlap, language detection, the keyword form, and
ingestion's guarantees: all or nothing, failures with their reason, no duplicates."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest

from knowledge import ingestion, services
from knowledge.ingestion import Block, IngestionError
from knowledge.models import Chunk, Document
from tests.knowledge.conftest import upload


def make_pdf(lines: list[str]) -> bytes:
    """A small valid PDF with one page of Helvetica text."""
    stream = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def make_docx() -> bytes:
    from docx import Document as WordDocument

    word = WordDocument()
    word.add_heading("Delivery", level=1)
    word.add_paragraph("Riyadh orders arrive within 24 hours.")
    word.add_heading("الاسترجاع", level=1)
    word.add_paragraph("يمكن الاسترجاع خلال 14 يوماً.")
    table = word.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "city", "days"
    table.cell(1, 0).text, table.cell(1, 1).text = "Jeddah", "3"
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("a.txt", None, "text"),
        ("A.MD", None, "markdown"),
        ("page.htm", None, "html"),
        ("doc.pdf", None, "pdf"),
        ("doc.docx", None, "docx"),
        ("rows.csv", None, "csv"),
        ("noextension", "application/pdf", "pdf"),
        ("image.png", "text/plain", None),
        ("archive.zip", None, None),
        ("noextension", "application/octet-stream", None),
    ],
)
def test_detect_type(filename: str, content_type: str | None, expected: str | None) -> None:
    assert ingestion.detect_type(filename, content_type) == expected


def test_markdown_is_split_by_headings_and_paragraphs() -> None:
    raw = (
        b"---\nauthor: x\n---\n# Shipping\n\nFirst **paragraph**.\n\n"
        b"- item one\n- item [two](http://x)\n\n## Fees\nFree over 300.\n"
    )
    assert ingestion.parse("markdown", raw) == [
        Block("Shipping", "First paragraph."),
        Block("Shipping", "• item one"),
        Block("Shipping", "• item two"),
        Block("Fees", "Free over 300."),
    ]


def test_html_keeps_headings_and_drops_scripts() -> None:
    raw = (
        "<html><head><title>x</title><style>p{}</style></head><body><h2>الشحن</h2>"
        "<p>التوصيل خلال يومين.</p><script>alert(1)</script><ul><li>مجاني فوق 300</li></ul></body></html>"
    ).encode()
    assert ingestion.parse("html", raw) == [Block("الشحن", "التوصيل خلال يومين."), Block("الشحن", "مجاني فوق 300")]


def test_csv_rows_become_labelled_blocks() -> None:
    raw = b"question;answer\nReturn window;14 days\n;\nCOD fee;15 SAR\n"
    assert ingestion.parse("csv", raw) == [
        Block("", "question: Return window; answer: 14 days"),
        Block("", "question: COD fee; answer: 15 SAR"),
    ]


def test_pdf_text_is_extracted_per_page() -> None:
    from django.utils import translation

    with translation.override("en"):
        blocks = ingestion.parse("pdf", make_pdf(["Returns within 14 days.", "Keep the receipt."]))
    assert [block.heading for block in blocks] == ["Page 1"]
    assert "Returns within 14 days." in blocks[0].text and "Keep the receipt." in blocks[0].text


def test_docx_headings_paragraphs_and_tables() -> None:
    assert ingestion.parse("docx", make_docx()) == [
        Block("Delivery", "Riyadh orders arrive within 24 hours."),
        Block("الاسترجاع", "يمكن الاسترجاع خلال 14 يوماً."),
        Block("الاسترجاع", "city: Jeddah; days: 3"),
    ]


@pytest.mark.parametrize(
    ("document_type", "raw", "code"),
    [
        ("pdf", b"%PDF-1.4\n1 0 obj garbage", "corrupt_pdf"),
        ("pdf", b"PK\x03\x04 a zip, not a pdf", "corrupt_pdf"),
        ("docx", b"not a zip at all", "corrupt_docx"),
        ("text", b"\x00\x01\x02" * 10, "unreadable_text"),
        ("markdown", b"   \n\n  ", "empty"),
    ],
)
def test_unreadable_files_raise_with_a_code(document_type: str, raw: bytes, code: str) -> None:
    with pytest.raises(IngestionError) as caught:
        ingestion.parse(document_type, raw)
    assert caught.value.code == code


def test_text_in_windows_arabic_encoding_is_read() -> None:
    assert ingestion.parse("text", "سياسة الشحن".encode("cp1256")) == [Block("", "سياسة الشحن")]


def test_chunks_respect_the_size_and_overlap_within_a_section() -> None:
    sentences = [f"Sentence number {index} explains one rule of the shop." for index in range(30)]
    blocks = [
        Block("Rules", " ".join(sentences[:15])),
        Block("Rules", " ".join(sentences[15:])),
        Block("Other", "Short."),
    ]

    drafts = ingestion.chunk_blocks(blocks, max_chars=300, overlap_chars=80)

    assert [draft.position for draft in drafts] == list(range(len(drafts)))
    assert all(len(draft.text) <= 300 for draft in drafts)
    rules = [draft for draft in drafts if draft.heading == "Rules"]
    assert len(rules) >= 4
    for previous, current in itertools.pairwise(rules):
        last_sentence = previous.text.rsplit(". ", 1)[-1].rstrip(".") + "."
        assert current.text.startswith(last_sentence.split("\n")[-1])  # the overlap
    assert drafts[-1].heading == "Other" and drafts[-1].text == "Short."
    joined = " ".join(draft.text for draft in rules)
    assert all(sentence in joined for sentence in sentences)


def test_language_detection() -> None:
    assert ingestion.detect_language("سياسة الاسترجاع خلال 14 يوماً") == "ar"
    assert ingestion.detect_language("Returns within 14 days") == "en"
    assert ingestion.detect_language("عطر Oud Royal الفاخر للمناسبات") == "ar"


def test_keyword_form_normalises_and_strips_clitics() -> None:
    assert ingestion.keyword_form("بالشحن والإرجاع للمنتجات Shipping Policies") == "شحن ارجاع منتج shipping policy"


def test_query_terms_drop_stopwords_and_duplicates() -> None:
    assert ingestion.query_terms("What is the shipping fee for the shipping?") == ["shipping", "fee"]
    assert ingestion.query_terms("ما هي رسوم الشحن؟") == ["رسوم", "شحن"]


# --- ingestion into the database -----------------------------------------------------------


def test_ingestion_writes_all_chunks_with_the_ready_status(two_tenants: Any) -> None:
    body = "\n\n".join(f"## Section {index}\n\n" + "A long paragraph about delivery rules. " * 30 for index in range(3))
    document = upload(two_tenants.a.tenant, "long.md", body)

    chunks = list(Chunk.objects.for_tenant(two_tenants.a.tenant).filter(document=document))
    assert document.status == "ready"
    assert document.chunk_count == len(chunks) >= 6
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk.search_vector is not None and len(chunk.embedding) == 512 for chunk in chunks)


def test_a_failure_while_embedding_leaves_nothing_searchable(two_tenants: Any, monkeypatch: Any) -> None:
    from knowledge import embedders

    def broken(self: Any, texts: Any) -> Any:
        raise embedders.EmbeddingError("service down")

    monkeypatch.setattr(embedders.LocalEmbedder, "encode_documents", broken)
    document = upload(two_tenants.a.tenant, "policy.md", "# Policy\n\nReturns within 14 days.")

    assert (document.status, document.failure_code, document.chunk_count) == ("failed", "embedding_failed", 0)
    assert "service down" in document.failure_detail
    assert not Chunk.objects.for_tenant(two_tenants.a.tenant).exists()


def test_a_database_error_while_publishing_rolls_the_chunks_back(two_tenants: Any, monkeypatch: Any) -> None:
    result = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nReturns within 14 days.")
    original = Chunk.objects.bulk_create

    def bulk_create_then_fail(objs: Any, **kwargs: Any) -> Any:
        original(objs, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Chunk.objects, "bulk_create", bulk_create_then_fail)
    with pytest.raises(RuntimeError):
        services.document_ingest(two_tenants.a.tenant, result.document.pk)

    assert not Chunk.objects.for_tenant(two_tenants.a.tenant).exists()
    document = Document.objects.for_tenant(two_tenants.a.tenant).get()
    assert (document.status, document.failure_code, document.failure_detail) == ("failed", "unexpected", "RuntimeError")


def test_ingestion_is_idempotent(two_tenants: Any) -> None:
    document = upload(two_tenants.a.tenant, "p.md", "# P\n\nReturns within 14 days.")

    assert services.document_ingest(two_tenants.a.tenant, document.pk) == "ready"
    assert Chunk.objects.for_tenant(two_tenants.a.tenant).count() == 1


def test_a_stale_processing_document_is_claimed_again(two_tenants: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    result = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nText here.")
    Document.objects.for_tenant(two_tenants.a.tenant).update(status="processing")
    assert services.document_ingest(two_tenants.a.tenant, result.document.pk) == "processing"  # another worker's
    Document.objects.for_tenant(two_tenants.a.tenant).update(updated_at=timezone.now() - timedelta(minutes=11))
    assert services.document_ingest(two_tenants.a.tenant, result.document.pk) == "ready"


def test_ingesting_another_tenants_document_does_nothing(two_tenants: Any) -> None:
    result = services.document_upload(two_tenants.a.tenant, filename="p.md", content=b"# P\n\nText here.")

    assert services.document_ingest(two_tenants.b.tenant, result.document.pk) == "missing"
    assert Document.objects.for_tenant(two_tenants.a.tenant).get().status == "pending"
    assert not Chunk.objects.all_tenants().exists()


def test_reprocess_a_failed_document(two_tenants: Any, ingest_inline: list[Any]) -> None:
    document = upload(two_tenants.a.tenant, "broken.pdf", b"%PDF-1.4 broken")
    assert document.status == "failed"
    Document.objects.for_tenant(two_tenants.a.tenant).update(content=make_pdf(["Fixed text."]))

    assert services.document_reprocess(two_tenants.a.tenant, document.pk) is True
    assert ingest_inline == [(two_tenants.a.tenant.pk, document.pk)]
    document.refresh_from_db()
    assert (document.status, document.failure_code, document.chunk_count) == ("ready", "", 1)
    assert services.document_reprocess(two_tenants.b.tenant, document.pk) is False
