"""Fake channel providers on 127.0.0.1 that speak the real wire formats.

One server answers as WhatsApp Cloud API, Messenger/Instagram (Graph API), Telegram Bot API,
Twilio and Chatwoot at once, by path, and refuses what the real one refuses: a missing or
wrong credential is a 401 in that provider's error shape, a request missing a required field
a 400. Every request is recorded (method, path, headers, raw body, parsed JSON or form) so
tests assert the exact request shape. ``fail_next(n, status)`` makes the next ``n`` requests
fail, for retries and dead letters; ``latency`` makes every answer take that long, and
``max_in_flight`` tells how many requests were answered at once.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ACCESS_TOKEN = "EAAG-fake-access-token"
BOT_TOKEN = "123456:fake-bot-token"
TWILIO_ACCOUNT = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "fake-twilio-auth-token"
CHATWOOT_TOKEN = "fake-chatwoot-api-token"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    # A backlog of 5 (the default) refuses connections a burst of deliveries opens at once.
    request_queue_size = 128


class FakeProviders:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # Seconds each answer takes (a real provider's round trip), and the most requests
        # that were being answered at once.
        self.latency = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        server = _Server(("127.0.0.1", 0), self._handler_class())
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def next_id(self) -> int:
        return next(self._ids)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Like the real APIs: HTTP/1.1, connections kept alive between requests.
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                record = Recorded(
                    method=self.command,
                    path=split.path,
                    query=dict(parse_qsl(split.query)),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=raw,
                )
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/json") and raw:
                    record.json = json.loads(raw)
                elif content_type.startswith("application/x-www-form-urlencoded"):
                    record.form = dict(parse_qsl(raw.decode()))
                with fake._lock:
                    fake.requests.append(record)
                    failure = fake._failures.pop(0) if fake._failures else None
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if fake.latency:
                        time.sleep(fake.latency)
                    if failure is not None:
                        self._answer(failure, {"error": {"message": "temporarily unavailable", "code": failure}})
                        return
                    status, body = fake.route(record)
                    self._answer(status, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            do_GET = do_POST = do_PUT = _handle

        return Handler

    # --- the providers ---------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any]:
        path = request.path
        if match := re.fullmatch(r"/v[\d.]+/([^/]+)/messages", path):
            return self._graph(request, match.group(1))
        if match := re.fullmatch(r"/bot([^/]+)/sendMessage", path):
            return self._telegram(request, match.group(1))
        if match := re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", path):
            return self._twilio(request, match.group(1))
        if match := re.fullmatch(r"/api/v1/accounts/(\d+)/(.+)", path):
            return self._chatwoot(request, match.group(2))
        return 404, {"error": "no such endpoint"}

    def _graph(self, request: Recorded, node: str) -> tuple[int, Any]:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        body = request.json or {}
        if body.get("messaging_product") == "whatsapp":
            if not body.get("to") or body.get("type") not in ("text", "template"):
                return 400, {"error": {"message": "(#100) Invalid parameter", "code": 100}}
            return 200, {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": f"wamid.FAKE{self.next_id()}"}],
            }
        if not (body.get("recipient") or {}).get("id") or not (body.get("message") or {}).get("text"):
            return 400, {"error": {"message": "(#100) The parameter recipient is required", "code": 100}}
        return 200, {"recipient_id": body["recipient"]["id"], "message_id": f"m_FAKE{self.next_id()}"}

    def _telegram(self, request: Recorded, token: str) -> tuple[int, Any]:
        if token != BOT_TOKEN:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        body = request.json or {}
        if "chat_id" not in body or not body.get("text"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        return 200, {
            "ok": True,
            "result": {"message_id": 1000 + self.next_id(), "chat": {"id": int(body["chat_id"])}, "text": body["text"]},
        }

    def _twilio(self, request: Recorded, account: str) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{TWILIO_ACCOUNT}:{TWILIO_TOKEN}".encode()).decode()
        if account != TWILIO_ACCOUNT or request.headers.get("authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        form = request.form
        if not form.get("To") or not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
        return 201, {"sid": f"SMFAKE{self.next_id():030d}", "status": "queued", "to": form["To"], "body": form["Body"]}

    def _chatwoot(self, request: Recorded, rest: str) -> tuple[int, Any]:
        if request.headers.get("api_access_token") != CHATWOOT_TOKEN:
            return 401, {"errors": ["You need to sign in or sign up before continuing."]}
        body = request.json or {}
        if re.fullmatch(r"conversations/\d+/messages", rest) and request.method == "POST":
            if not body.get("content"):
                return 422, {"message": "content is missing"}
            return 200, {"id": 5000 + self.next_id(), "content": body["content"], "private": body.get("private")}
        if re.fullmatch(r"conversations/\d+/labels", rest) and request.method == "POST":
            return 200, {"payload": body.get("labels", [])}
        if re.fullmatch(r"contacts/\d+", rest) and request.method == "PUT":
            return 200, {"payload": {"custom_attributes": body.get("custom_attributes", {})}}
        return 404, {"error": "Resource could not be found"}
