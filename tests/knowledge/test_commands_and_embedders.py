"""seed_knowledge, reindex_knowledge (progress, resume) and the OpenAI-compatible embedder
against a fake embeddings server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from knowledge import embedders, services
from knowledge.models import Chunk, Document
from knowledge.selectors import knowledge_search
from tests.knowledge.conftest import upload

SEED_GLOBAL_COUNT = 34
SEED_DEMO_COUNT = 5


def fake_vector(text: str, dimensions: int) -> list[float]:
    """Deterministic: the same text always gets the same vector; similar bags of words get
    similar vectors (a hashed bag of words), so search over it is meaningful."""
    vector = np.zeros(dimensions)
    for word in text.lower().split():
        vector[int(hashlib.sha256(word.strip(".,?!").encode()).hexdigest(), 16) % dimensions] += 1.0
    return [float(value) for value in vector]


class FakeEmbeddings(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if type(self).fail:
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "boom", "type": "server_error"}}')
            return
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        payload = {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": index, "embedding": fake_vector(text, body["dimensions"])}
                for index, text in enumerate(texts)
            ],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def openai_server(settings: Any) -> Iterator[list[dict[str, Any]]]:
    FakeEmbeddings.requests = []
    FakeEmbeddings.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.KNOWLEDGE_EMBEDDER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.KNOWLEDGE_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
    try:
        yield FakeEmbeddings.requests
    finally:
        server.shutdown()
        server.server_close()


def test_seed_is_idempotent_and_global(two_tenants: Any) -> None:
    first = services.knowledge_seed_global()
    again = services.knowledge_seed_global()

    assert first == {"created": SEED_GLOBAL_COUNT, "unchanged": 0, "replaced": 0}
    assert again == {"created": 0, "unchanged": SEED_GLOBAL_COUNT, "replaced": 0}
    library = Document.objects.global_only()
    assert library.count() == SEED_GLOBAL_COUNT
    assert set(library.values_list("status", flat=True)) == {"ready"}
    assert set(library.values_list("language", flat=True)) == {"ar", "en"}
    ramadan = library.get(source="morvo-seed:global/ramadan-timing-ar.md")
    assert (ramadan.title, ramadan.region, ramadan.language) == ("توقيت الإعلانات والنشر في شهر رمضان", "الخليج", "ar")
    assert knowledge_search(two_tenants.b.tenant, "متى تكون ذروة التصفح في رمضان؟", k=1)[0].document_id == ramadan.pk


def test_seed_tenant_loads_the_demo_shop_documents_for_that_tenant_only(two_tenants: Any) -> None:
    assert services.knowledge_seed_tenant(two_tenants.a.tenant)["created"] == SEED_DEMO_COUNT
    assert services.knowledge_seed_tenant(two_tenants.a.tenant)["unchanged"] == SEED_DEMO_COUNT

    assert Document.objects.for_tenant(two_tenants.a.tenant).count() == SEED_DEMO_COUNT
    assert not Document.objects.for_tenant(two_tenants.b.tenant).exists()
    hits = knowledge_search(two_tenants.a.tenant, "Can I return a perfume after opening it?", k=3)
    assert {hit.source for hit in hits} & {
        "morvo-seed:demo/returns-policy-ar.md",
        "morvo-seed:demo/shipping-returns-en.md",
    }
    assert knowledge_search(two_tenants.b.tenant, "Dar Al Oud returns after opening", k=5, threshold=0.0) == []


def test_changed_seed_file_replaces_its_document(two_tenants: Any, tmp_path: Any, monkeypatch: Any) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "faq.md").write_text("# FAQ\n\nOld answer.", encoding="utf-8")
    monkeypatch.setattr(services, "SEED_DIR", tmp_path)
    services.knowledge_seed_tenant(two_tenants.a.tenant)
    (folder / "faq.md").write_text("# FAQ\n\nNew answer.", encoding="utf-8")

    assert services.knowledge_seed_tenant(two_tenants.a.tenant) == {"created": 0, "unchanged": 0, "replaced": 1}
    assert [chunk.text for chunk in Chunk.objects.for_tenant(two_tenants.a.tenant)] == ["New answer."]


def test_seed_knowledge_command(two_tenants: Any) -> None:
    out = io.StringIO()
    call_command("seed_knowledge", "--tenant", "alpha", stdout=out)

    assert out.getvalue().splitlines() == [
        f"Global library: {SEED_GLOBAL_COUNT} added, 0 updated, 0 unchanged.",
        f"alpha: {SEED_DEMO_COUNT} added, 0 updated, 0 unchanged.",
    ]
    with pytest.raises(CommandError):
        call_command("seed_knowledge", "--tenant", "nobody", stdout=io.StringIO())


def test_openai_embedder_speaks_the_embeddings_api(openai_server: list[dict[str, Any]]) -> None:
    embedder = embedders.get_embedder()
    vectors = embedder.encode_documents(["shipping to riyadh", "returns within 14 days"])

    assert embedder.name == "openai:text-embedding-3-small"
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert openai_server[0]["path"] == "/v1/embeddings"
    assert openai_server[0]["auth"] == "Bearer sk-test"
    assert (openai_server[0]["model"], openai_server[0]["dimensions"]) == ("text-embedding-3-small", 512)
    assert openai_server[0]["input"] == ["shipping to riyadh", "returns within 14 days"]


def test_openai_failure_fails_the_document_with_the_reason(two_tenants: Any, openai_server: Any) -> None:
    FakeEmbeddings.fail = True
    document = upload(two_tenants.a.tenant, "p.md", "# P\n\nReturns within 14 days.")

    assert (document.status, document.failure_code) == ("failed", "embedding_failed")
    assert not Chunk.objects.for_tenant(two_tenants.a.tenant).exists()


def test_search_falls_back_to_keywords_when_the_embeddings_service_fails(two_tenants: Any, openai_server: Any) -> None:
    document = upload(two_tenants.a.tenant, "p.md", "# Returns\n\nReturns within 14 days of delivery.")
    FakeEmbeddings.fail = True

    hits = knowledge_search(two_tenants.a.tenant, "returns within how many days", k=3)

    assert [hit.document_id for hit in hits] == [document.pk]
    assert knowledge_search(two_tenants.b.tenant, "returns within how many days", k=3) == []


def test_openai_embedder_needs_a_key(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.KNOWLEDGE_EMBEDDER = "openai"
    settings.OPENAI_API_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        embedders.get_embedder()


def test_reindex_switches_the_model_and_resumes_after_an_interruption(
    two_tenants: Any, settings: Any, monkeypatch: Any
) -> None:
    body = "\n\n".join(f"## Part {index}\n\nDelivery rule number {index} for the shop." for index in range(5))
    upload(two_tenants.a.tenant, "rules.md", body)
    upload(None, "library.md", "# Library\n\nRamadan plans start early.")
    assert Chunk.objects.all_tenants().filter(embedding_model="use-multilingual-v3").count() == 6

    server_requests: list[Any] = []
    FakeEmbeddings.requests = server_requests
    FakeEmbeddings.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.KNOWLEDGE_EMBEDDER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        original = services.chunks_reindex_batch
        calls = {"n": 0}

        def interrupted(batch_size: int = 256) -> int:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return original(batch_size)

        monkeypatch.setattr(services, "chunks_reindex_batch", interrupted)
        with pytest.raises(KeyboardInterrupt):
            call_command("reindex_knowledge", "--batch-size", "2", stdout=io.StringIO(), stderr=io.StringIO())
        assert Chunk.objects.all_tenants().filter(embedding_model="openai:text-embedding-3-small").count() == 4

        monkeypatch.setattr(services, "chunks_reindex_batch", original)
        out, progress = io.StringIO(), io.StringIO()
        call_command("reindex_knowledge", "--batch-size", "2", stdout=out, stderr=progress)
        assert out.getvalue().splitlines() == [
            "Re-embedding 2 chunks with openai:text-embedding-3-small.",
            "Done: 2 chunks re-embedded.",
        ]
        assert "2/2" in progress.getvalue()  # the progress bar
        assert set(Chunk.objects.all_tenants().values_list("embedding_model", flat=True)) == {
            "openai:text-embedding-3-small"
        }
        assert set(Document.objects.all_tenants().values_list("embedding_model", flat=True)) == {
            "openai:text-embedding-3-small"
        }
        hits = knowledge_search(two_tenants.a.tenant, "delivery rule number 3", k=1, threshold=0.0)
        assert hits[0].snippet == "Delivery rule number 3 for the shop."
        again = io.StringIO()
        call_command("reindex_knowledge", stdout=again)
        assert again.getvalue().strip() == "Every chunk is already embedded with openai:text-embedding-3-small."
    finally:
        server.shutdown()
        server.server_close()
