"""From an uploaded file to chunks: type detection, parsing by structure, chunking with
overlap, language detection and the keyword form of a text.

Parsers return blocks (a heading and a paragraph, a table row, a page's paragraph); the
chunker packs consecutive blocks of one section into chunks of at most ``CHUNK_MAX_CHARS``
characters and starts each chunk with the tail of the previous one (``CHUNK_OVERLAP_CHARS``),
so a sentence cut by a boundary is still found whole in one of the two chunks.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from django.utils.translation import gettext

from knowledge.models import DocumentType, Language
from morvo.text import normalize_arabic

CHUNK_MAX_CHARS = 700
CHUNK_OVERLAP_CHARS = 150


class IngestionError(Exception):
    """A file that cannot be turned into chunks. ``code`` is stored on the document."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def failure_message(code: str, detail: str = "") -> str:
    """The reason a document failed, in the active language."""
    messages = {
        "unsupported_type": gettext("This file type is not supported."),
        "corrupt_pdf": gettext("The PDF file is damaged or unreadable."),
        "corrupt_docx": gettext("The Word file is damaged or unreadable."),
        "unreadable_text": gettext("The text is not in a known encoding (use UTF-8)."),
        "empty": gettext("No text was found in the file."),
        "embedding_failed": gettext("The text could not be embedded; try again later."),
        "unexpected": gettext("An unexpected error stopped the processing; try again later."),
    }
    message = messages.get(code, gettext("The document could not be processed."))
    return f"{message} ({detail})" if detail else message


# --- type detection -------------------------------------------------------------------------

_EXTENSIONS = {
    ".txt": DocumentType.TEXT,
    ".text": DocumentType.TEXT,
    ".md": DocumentType.MARKDOWN,
    ".markdown": DocumentType.MARKDOWN,
    ".html": DocumentType.HTML,
    ".htm": DocumentType.HTML,
    ".pdf": DocumentType.PDF,
    ".docx": DocumentType.DOCX,
    ".csv": DocumentType.CSV,
}
_CONTENT_TYPES = {
    "text/plain": DocumentType.TEXT,
    "text/markdown": DocumentType.MARKDOWN,
    "text/x-markdown": DocumentType.MARKDOWN,
    "text/html": DocumentType.HTML,
    "application/pdf": DocumentType.PDF,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": DocumentType.DOCX,
    "text/csv": DocumentType.CSV,
}
SUPPORTED_EXTENSIONS = tuple(sorted(_EXTENSIONS))


def detect_type(filename: str, content_type: str | None = None) -> str | None:
    """The document type of an upload from its extension (or, without one, the content type
    the client sent); ``None`` when Morvo cannot read it."""
    suffix = PurePath(filename or "").suffix.lower()
    if suffix:
        return _EXTENSIONS.get(suffix)
    base_type = (content_type or "").split(";")[0].strip().lower()
    return _CONTENT_TYPES.get(base_type)


# --- blocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    heading: str
    text: str


def decode_text(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1256"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise IngestionError("unreadable_text")


_MARKDOWN_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MARKDOWN_NOISE = re.compile(r"(\*\*|__|`|!\[[^\]]*\]\([^)]*\))")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _paragraph_blocks(lines: list[str], heading_of: re.Pattern[str] | None) -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    paragraph: list[str] = []

    def flush() -> None:
        text = " ".join(part.strip() for part in paragraph if part.strip())
        if text:
            blocks.append(Block(heading, text))
        paragraph.clear()

    for line in lines:
        match = heading_of.match(line) if heading_of is not None else None
        if match is not None:
            flush()
            heading = _clean_markdown(match.group(2))
        elif not line.strip():
            flush()
        else:
            stripped = line.strip()
            if heading_of is not None:
                stripped = _clean_markdown(re.sub(r"^([-*+]|\d+[.)])\s+", "• ", stripped))
            if stripped.startswith("• ") and paragraph:
                flush()  # a list item is its own block
            paragraph.append(stripped)
    flush()
    return blocks


def _clean_markdown(text: str) -> str:
    return _MARKDOWN_NOISE.sub("", _MARKDOWN_LINK.sub(r"\1", text)).strip()


def parse_text(raw: bytes) -> list[Block]:
    return _paragraph_blocks(decode_text(raw).splitlines(), None)


def parse_markdown(raw: bytes) -> list[Block]:
    text = decode_text(raw)
    if text.startswith("---\n"):  # front matter is metadata, not content
        end = text.find("\n---", 4)
        if end != -1:
            text = text[end + 4 :]
    text = _HTML_COMMENT.sub("", text)  # comments carry metadata (the seed's region), not content
    return _paragraph_blocks(text.splitlines(), _MARKDOWN_HEADING)


class _HTMLBlocks(HTMLParser):
    _BLOCK_TAGS = frozenset({"p", "div", "li", "tr", "br", "section", "article", "blockquote", "td", "th", "pre"})
    _HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
    _SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.heading = ""
        self._text: list[str] = []
        self._in_heading = False
        self._heading_text: list[str] = []
        self._skip_depth = 0

    def _flush(self) -> None:
        text = " ".join(" ".join(self._text).split())
        if text:
            self.blocks.append(Block(self.heading, text))
        self._text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP_TAGS:
            self._skip_depth += 1
        elif tag in self._HEADING_TAGS:
            self._flush()
            self._in_heading = True
            self._heading_text = []
        elif tag in self._BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._HEADING_TAGS and self._in_heading:
            self._in_heading = False
            self.heading = " ".join(" ".join(self._heading_text).split())
        elif tag in self._BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        (self._heading_text if self._in_heading else self._text).append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def parse_html(raw: bytes) -> list[Block]:
    parser = _HTMLBlocks()
    parser.feed(decode_text(raw))
    parser.close()
    return parser.blocks


def parse_pdf(raw: bytes) -> list[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not raw.lstrip().startswith(b"%PDF"):
        raise IngestionError("corrupt_pdf", "no PDF header")
    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as error:
        raise IngestionError("corrupt_pdf", type(error).__name__) from error
    blocks: list[Block] = []
    for number, page in enumerate(pages, start=1):
        for paragraph in re.split(r"\n\s*\n", page):
            text = " ".join(paragraph.split())
            if text:
                blocks.append(Block(gettext("Page %(number)s") % {"number": number}, text))
    return blocks


def parse_docx(raw: bytes) -> list[Block]:
    import zipfile

    from docx import Document as WordDocument
    from docx.opc.exceptions import PackageNotFoundError

    try:
        word = WordDocument(io.BytesIO(raw))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise IngestionError("corrupt_docx", type(error).__name__) from error
    blocks: list[Block] = []
    heading = ""
    for paragraph in word.paragraphs:
        text = " ".join(paragraph.text.split())
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            heading = text
        else:
            blocks.append(Block(heading, text))
    for table in word.tables:
        rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
        blocks.extend(_rows_as_blocks(rows, heading))
    return blocks


def _rows_as_blocks(rows: list[list[str]], heading: str) -> list[Block]:
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header, *body = rows
    if not body:
        return [Block(heading, " | ".join(header))]
    blocks = []
    for row in body:
        pairs = [f"{name}: {value}" if name else value for name, value in zip(header, row, strict=False) if value]
        if pairs:
            blocks.append(Block(heading, "; ".join(pairs)))
    return blocks


def parse_csv(raw: bytes) -> list[Block]:
    text = decode_text(raw)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    return _rows_as_blocks(rows, "")


PARSERS = {
    DocumentType.TEXT: parse_text,
    DocumentType.MARKDOWN: parse_markdown,
    DocumentType.HTML: parse_html,
    DocumentType.PDF: parse_pdf,
    DocumentType.DOCX: parse_docx,
    DocumentType.CSV: parse_csv,
}


def parse(document_type: str, raw: bytes) -> list[Block]:
    parser = PARSERS.get(document_type)  # type: ignore[call-overload]
    if parser is None:
        raise IngestionError("unsupported_type", document_type)
    blocks: list[Block] = parser(raw)
    if not blocks:
        raise IngestionError("empty")
    return blocks


# --- chunking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkDraft:
    position: int
    heading: str
    text: str
    language: str


_SENTENCE_END = re.compile(r"(?<=[.!?؟۔…])\s+|\n+")


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at sentence ends, then words."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        while len(sentence) > limit:  # one very long sentence: cut at a word boundary
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def _tail(text: str, limit: int) -> str:
    """The last sentences of ``text`` that fit in ``limit`` characters (the overlap)."""
    sentences = [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
    tail = ""
    for sentence in reversed(sentences):
        candidate = f"{sentence} {tail}".strip()
        if len(candidate) > limit:
            break
        tail = candidate
    if not tail and sentences:  # no whole sentence fits: the last words
        words = text[-limit:].split(" ", 1)
        tail = words[-1].strip()
    return tail


def chunk_blocks(
    blocks: list[Block], *, max_chars: int = CHUNK_MAX_CHARS, overlap_chars: int = CHUNK_OVERLAP_CHARS
) -> list[ChunkDraft]:
    """Pack blocks into chunks. A chunk never spans two sections (headings); within a section
    each new chunk starts with the tail of the one before."""
    drafts: list[tuple[str, str]] = []
    heading: str | None = None
    current = ""
    for block in blocks:
        if block.heading != heading:
            if current:
                drafts.append((heading or "", current))
            heading, current = block.heading, ""
        for piece in _pieces(block.text, max_chars - overlap_chars):
            if current and len(current) + 1 + len(piece) > max_chars:
                drafts.append((heading or "", current))
                current = f"{_tail(current, overlap_chars)} {piece}".strip()
            else:
                current = f"{current}\n{piece}".strip() if current else piece
    if current:
        drafts.append((heading or "", current))
    return [
        ChunkDraft(position=index, heading=head[:300], text=text, language=detect_language(f"{head} {text}"))
        for index, (head, text) in enumerate(drafts)
    ]


# --- language and keywords ------------------------------------------------------------------

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3\u06fa-\u06ff]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    """Arabic when at least a third of the letters are Arabic, otherwise English."""
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    if arabic + latin == 0:
        return Language.ARABIC
    return Language.ARABIC if arabic * 2 >= latin else Language.ENGLISH


def dominant_language(drafts: list[ChunkDraft]) -> str:
    weights: dict[str, int] = {}
    for draft in drafts:
        weights[draft.language] = weights.get(draft.language, 0) + len(draft.text)
    return max(weights, key=lambda language: weights[language]) if weights else Language.ARABIC


_WORD = re.compile(r"[\w\u0600-\u06ff]+", re.UNICODE)
# Arabic clitics that glue onto a noun; removed so "بالشحن" and "الشحن" match "شحن".
_ARABIC_PREFIXES = ("وبال", "وال", "بال", "كال", "فال", "لل", "ال")
_ARABIC_SUFFIXES = ("ات", "ون", "ين", "ها", "هم", "كم")
_ARABIC = re.compile(r"[\u0600-\u06ff]")


def stem(word: str) -> str:
    """A light, deterministic stem of one normalised word (Arabic clitics and plural endings,
    English plural ``s``); both the index and the query go through it."""
    if _ARABIC.search(word):
        for prefix in _ARABIC_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 2:
                word = word[len(prefix) :]
                break
        for suffix in _ARABIC_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return word[: -len(suffix)]
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def keyword_terms(text: str) -> list[str]:
    """The stemmed words of ``text`` after Morvo's Arabic normalisation."""
    return [stem(word) for word in _WORD.findall(normalize_arabic(text))]


def keyword_form(text: str) -> str:
    return " ".join(keyword_terms(text))


STOPWORDS = frozenset(
    keyword_terms(
        "a an the and or of to in on for with at by from is are was were be been do does did how what which "
        "who whom when where why can could should would will shall may might must i you we they it he she my "
        "your our their me us them this that these those there here about as if not no yes any some please "
        "tell know want need get have has had than then also into out up down so very more most much many "
        "في من على الى إلى عن مع هل ما ماذا متى كيف لماذا أين اين كم هو هي هم نحن انا أنا انت أنت هذا هذه "
        "ذلك تلك التي الذي الذين او أو ثم لا نعم لم لن قد كل بعض اي أي عند بين بعد قبل حتى كان كانت يكون "
        "تكون لي لك لنا له لها به بها فيه فيها منه منها عليه عليها اريد أريد ابغى أبغى ممكن لو يا"
    )
)


def query_terms(query: str) -> list[str]:
    """The distinct keyword terms of a query, stopwords removed, in order."""
    seen: dict[str, None] = {}
    for term in keyword_terms(query):
        if term not in STOPWORDS and (len(term) > 1 or term.isdigit()):
            seen.setdefault(term, None)
    return list(seen)
