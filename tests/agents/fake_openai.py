"""A fake OpenAI-compatible server on 127.0.0.1 for tests and benches.

It speaks ``POST /v1/chat/completions`` as OpenAI does: a JSON completion with ``usage``, tool
calls (``tool_calls`` with ``function.name`` and JSON ``arguments``, finish reason
``tool_calls``), and, when the request says ``"stream": true``, server-sent chunks ending in
``data: [DONE]`` with a final usage chunk when ``stream_options.include_usage`` is set.

Replies are scripted: ``enqueue`` adds replies served in order, ``respond_with`` installs a
function of the request for when the queue is empty. Every request is recorded. A reply can
also be a failure: an HTTP status (500, 429, ...), a delay longer than the client's timeout, or
a body that is not JSON.

Token counts follow a realistic rule unless a reply states them: prompt tokens are the
characters of every message (and tool definition) sent, divided by four; completion tokens the
characters of the reply, divided by four.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``tool_calls`` items are ``{"name": ..., "arguments": {...}}``."""

    content: str | None = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int = 200
    delay: float = 0.0
    malformed: bool = False
    error_message: str = "fake failure"


def text(content: str, **kwargs: Any) -> Reply:
    return Reply(content=content, **kwargs)


def tool_call(name: str, arguments: dict[str, Any], **kwargs: Any) -> Reply:
    return Reply(content=None, tool_calls=[{"name": name, "arguments": arguments}], **kwargs)


def failure(status: int = 500, **kwargs: Any) -> Reply:
    return Reply(status=status, **kwargs)


def prompt_characters(body: dict[str, Any]) -> int:
    """Characters a request sends as prompt: message contents, tool calls and tool schemas."""
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
        for call in message.get("tool_calls") or []:
            total += len(json.dumps(call.get("function", {}), ensure_ascii=False))
    if body.get("tools"):
        total += len(json.dumps(body["tools"], ensure_ascii=False))
    return total


class FakeOpenAI:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[dict[str, Any]] = []
        self.default = Reply(content="OK")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting ------------------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        with self._lock:
            for reply in replies:
                self._queue.append(Reply(content=reply) if isinstance(reply, str) else reply)

    def respond_with(self, responder: Callable[[dict[str, Any]], Reply | str] | None) -> None:
        """Answer with ``responder(request_body)`` whenever the queue is empty."""

        def wrapped(body: dict[str, Any]) -> Reply:
            assert responder is not None
            reply = responder(body)
            return Reply(content=reply) if isinstance(reply, str) else reply

        with self._lock:
            self._responder = wrapped if responder else None

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._responder = None
            self.requests.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self._responder
        return responder(body) if responder else self.default

    # -- HTTP -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send_json(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
                    return
                with fake._lock:
                    fake.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body}
                    )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                reply = fake._next_reply(body)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    headers = {"retry-after-ms": "1"} if reply.status == 429 else {}
                    self._send_json(
                        reply.status,
                        {"error": {"message": reply.error_message, "type": "server_error", "code": None}},
                        headers,
                    )
                    return
                if reply.malformed:
                    self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
                    return
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._send_json(200, fake.completion(body, reply))

            def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in fake.chunks(body, reply):
                    self.wfile.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler

    # -- wire format ----------------------------------------------------------------------

    @staticmethod
    def usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
        produced = len(reply.content or "") + sum(
            len(call["name"]) + len(json.dumps(call["arguments"], ensure_ascii=False)) for call in reply.tool_calls
        )
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else max(1, prompt_characters(body) // 4)
        completion = reply.completion_tokens if reply.completion_tokens is not None else max(1, produced // 4)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @staticmethod
    def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"], ensure_ascii=False)},
            }
            for call in reply.tool_calls
        ]

    def completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": self.usage(body, reply),
            "system_fingerprint": "fp_fake",
        }

    def chunks(self, body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
        identifier, created, model = f"chatcmpl-{uuid.uuid4().hex[:16]}", int(time.time()), body.get("model", "fake")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": identifier,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        content = reply.content or ""
        for start in range(0, len(content), 16):
            chunks.append(chunk({"content": content[start : start + 16]}))
        for index, call in enumerate(self._tool_calls(reply)):
            arguments = call["function"]["arguments"]
            chunks.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for start in range(0, len(arguments), 24):
                chunks.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[start : start + 24]}}]})
                )
        chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {
                    "id": identifier,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": self.usage(body, reply),
                }
            )
        return chunks
