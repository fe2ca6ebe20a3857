"""A fake Impact-style advertiser API on 127.0.0.1 that checks every request it gets
(Basic auth with the account SID and token, JSON in and out, the documented paths)."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACCOUNT_SID = "IRacc123"
AUTH_TOKEN = "tok-secret"


@dataclass
class FakePlatform:
    records: list[dict[str, Any]] = field(default_factory=list)
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this status
    fail_times: int = 0  # ... only this many times (0: always while fail_with is set)
    page_size: int | None = None
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self, method: str | None = None) -> list[tuple[str, str, Any]]:
        return [call for call in self.requests if method is None or call[0] == method]


def _handler(platform: FakePlatform) -> type[BaseHTTPRequestHandler]:
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    root = f"/Advertisers/{ACCOUNT_SID}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None) -> None:
            payload = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            parts = urlsplit(self.path)
            with platform.lock:
                platform.requests.append((method, self.path, body))
                if self.headers.get("Authorization") != expected_auth:
                    platform.problems.append(f"bad auth on {self.path}")
                    return self._send(401, {"Message": "Unauthorized"})
                if self.headers.get("Accept") != "application/json":
                    platform.problems.append(f"bad Accept on {self.path}")
                if raw and self.headers.get("Content-Type") != "application/json":
                    platform.problems.append(f"bad Content-Type on {self.path}")
                if platform.fail_with is not None:
                    if platform.fail_times:
                        platform.fail_times -= 1
                        if platform.fail_times == 0:
                            status, platform.fail_with = platform.fail_with, None
                            return self._send(status, {"Message": "down"})
                    return self._send(platform.fail_with, {"Message": "down"})
                if not parts.path.startswith(root + "/"):
                    platform.problems.append(f"unknown path {parts.path}")
                    return self._send(404, {"Message": "Not found"})
                tail = parts.path[len(root) + 1 :]
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                if method == "GET" and tail == "Reports/CampaignDailyPerformance":
                    return self._report(query)
                if method == "POST" and tail == "Campaigns":
                    platform.next_id += 1
                    campaign_id = f"C{platform.next_id}"
                    platform.campaigns[campaign_id] = {**(body or {}), "Id": campaign_id, "State": "ACTIVE"}
                    return self._send(200, {"Id": campaign_id})
                if tail.startswith("Campaigns/"):
                    campaign_id = tail.split("/", 1)[1]
                    campaign = platform.campaigns.setdefault(campaign_id, {"Id": campaign_id, "State": "ACTIVE"})
                    if method == "GET":
                        return self._send(200, campaign)
                    if method == "PUT":
                        if set(body or {}) - {"State", "DailyBudget"}:
                            platform.problems.append(f"unexpected PUT body {body}")
                        campaign.update(body or {})
                        return self._send(200, campaign)
                platform.problems.append(f"unexpected {method} {self.path}")
                return self._send(404, {"Message": "Not found"})

        def _report(self, query: dict[str, str]) -> None:
            if not query.get("StartDate") or not query.get("EndDate"):
                platform.problems.append("report without dates")
            rows = [
                record
                for record in platform.records
                if query.get("StartDate", "") <= record["Date"] <= query.get("EndDate", "9999")
            ]
            size = platform.page_size or int(query.get("PageSize", 1000))
            page = int(query.get("Page", 1))
            pages = max(1, -(-len(rows) // size))
            chunk = rows[(page - 1) * size : page * size]
            next_uri = ""
            if page < pages:
                next_uri = (
                    f"{root}/Reports/CampaignDailyPerformance?StartDate={query['StartDate']}"
                    f"&EndDate={query['EndDate']}&PageSize={size}&Page={page + 1}"
                )
            self._send(200, {"@page": str(page), "@numpages": str(pages), "@nextpageuri": next_uri, "Records": chunk})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

    return Handler


def start(platform: FakePlatform) -> FakePlatform:
    platform.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(platform))
    platform.server.daemon_threads = True
    threading.Thread(target=platform.server.serve_forever, daemon=True).start()
    return platform


def stop(platform: FakePlatform) -> None:
    if platform.server is not None:
        platform.server.shutdown()
        platform.server.server_close()
