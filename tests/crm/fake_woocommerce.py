"""A fake WooCommerce store on 127.0.0.1 speaking the REST API v3 wire format: paginated
``/wp-json/wc/v3/products`` and ``/orders`` with ``X-WP-Total``/``X-WP-TotalPages``, and
one-legged OAuth 1.0a (HMAC-SHA256) checked on every request, as WooCommerce does over HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crm.connectors.woocommerce import oauth_signature


class FakeWooCommerce:
    def __init__(self, *, consumer_key: str = "ck_test", consumer_secret: str = "cs_test") -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.products: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeWooCommerce:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.requests.append({"path": parts.path, "query": query})
        if self.fail_with is not None:
            self._reply(
                handler, self.fail_with, {"code": "error", "message": "failure", "data": {"status": self.fail_with}}
            )
            return
        signature = query.pop("oauth_signature", "")
        expected = oauth_signature("GET", f"{self.base_url}{parts.path}", query, self.consumer_secret)
        if (
            query.get("oauth_consumer_key") != self.consumer_key
            or query.get("oauth_signature_method") != "HMAC-SHA256"
            or not query.get("oauth_nonce")
            or signature != expected
        ):
            self._reply(
                handler,
                401,
                {
                    "code": "woocommerce_rest_authentication_error",
                    "message": "Invalid signature - provided signature does not match.",
                    "data": {"status": 401},
                },
            )
            return
        collections = {"/wp-json/wc/v3/products": self.products, "/wp-json/wc/v3/orders": self.orders}
        rows = collections.get(parts.path)
        if rows is None:
            self._reply(
                handler, 404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}}
            )
            return
        per_page = int(query.get("per_page", "10"))
        page = int(query.get("page", "1"))
        if not 1 <= per_page <= 100:
            self._reply(
                handler,
                400,
                {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page", "data": {"status": 400}},
            )
            return
        total_pages = max((len(rows) + per_page - 1) // per_page, 1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        self._reply(handler, 200, chunk, {"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(total_pages)})


def woo_product(
    product_id: int, sku: str, *, stock: int | None, price: str = "150.00", status: str = "publish", **extra: Any
) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": extra.pop("name", f"Product {product_id}"),
        "slug": f"product-{product_id}",
        "type": "simple",
        "status": status,
        "sku": sku,
        "price": price,
        "regular_price": price,
        "manage_stock": stock is not None,
        "stock_quantity": stock,
        "stock_status": "instock" if (stock or 0) > 0 else "outofstock",
        "categories": [{"id": 9, "name": "Perfume", "slug": "perfume"}],
        "images": [],
        **extra,
    }


def woo_order(
    order_id: int, *, status: str, email: str, items: list[tuple[str, int, str]], total: str
) -> dict[str, Any]:
    return {
        "id": order_id,
        "number": str(order_id),
        "status": status,
        "currency": "SAR",
        "total": total,
        "date_created_gmt": "2026-11-20T10:00:00",
        "payment_method": "cod",
        "billing": {"first_name": "Noura", "last_name": "Saleh", "email": email, "phone": "0501234567"},
        "line_items": [
            {"id": index, "sku": sku, "quantity": quantity, "price": price, "product_id": 1}
            for index, (sku, quantity, price) in enumerate(items)
        ],
    }
