"""The OpenAPI schema and the interactive docs."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS


@pytest.fixture
def schema(db, client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.oai.openapi+json"
    return response.json()


def test_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Morvo API"
    assert schema["info"]["version"] == "1.0.0"


def test_schema_yaml_is_the_default_format(db, client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


def test_schema_lists_exactly_the_api_paths_and_methods(schema):
    methods = {path: sorted(set(operations) - {"parameters"}) for path, operations in schema["paths"].items()}

    assert methods == {
        "/api/v1/me": ["get"],
        "/api/v1/tenant": ["get", "patch"],
        "/api/v1/agents/analyze": ["post"],
        "/api/v1/agents/runs": ["get"],
        "/api/v1/agents/runs/{id}": ["get"],
        "/api/v1/products": ["get"],
        "/api/v1/products/{id}": ["get", "patch"],
        "/api/v1/orders": ["get"],
        "/api/v1/orders/{id}": ["get"],
        "/api/v1/product-stats": ["get"],
        "/api/v1/product-stats/{id}": ["get"],
        "/api/v1/sentiment-mentions": ["get"],
        "/api/v1/sentiment-mentions/{id}": ["get"],
        "/api/v1/conversations": ["get", "post"],
        "/api/v1/conversations/{id}": ["get", "patch"],
        "/api/v1/conversations/{id}/messages": ["get", "post"],
        "/api/v1/conversations/{id}/take-over": ["post"],
        "/api/v1/conversations/{id}/hand-back": ["post"],
        "/api/v1/conversations/{id}/notes": ["post"],
        "/api/v1/inboxes": ["get", "post"],
        "/api/v1/inboxes/{id}": ["delete", "get"],
        "/api/v1/appointments": ["get", "post"],
        "/api/v1/appointments/{id}": ["get", "patch"],
        "/api/v1/appointments/slots": ["get"],
        "/api/v1/contact-attributes": ["get", "post"],
        "/api/v1/contact-attributes/{id}": ["delete", "get"],
        "/api/v1/contacts": ["get", "post"],
        "/api/v1/contacts/{id}": ["get", "patch"],
        "/api/v1/contacts/{id}/identities": ["post"],
        "/api/v1/contacts/{id}/notes": ["get", "post"],
        "/api/v1/contacts/{id}/qualifications": ["get"],
        "/api/v1/contacts/{id}/tag": ["post"],
        "/api/v1/contacts/{id}/untag": ["post"],
        "/api/v1/contacts/export": ["get"],
        "/api/v1/contacts/import": ["post"],
        "/api/v1/follow-ups": ["get", "post"],
        "/api/v1/follow-ups/{id}": ["get", "patch"],
        "/api/v1/labels": ["get", "post"],
        "/api/v1/labels/{id}": ["delete", "get", "patch"],
        "/api/v1/products/import": ["post"],
        "/api/v1/segments": ["get", "post"],
        "/api/v1/segments/{id}": ["delete", "get", "patch"],
        "/api/v1/segments/{id}/contacts": ["get"],
        "/api/v1/stock-alerts": ["get", "post"],
        "/api/v1/stock-alerts/{id}": ["get"],
        "/api/v1/stock-alerts/{id}/cancel": ["post"],
        "/api/v1/stock-alerts/notify": ["post"],
        "/api/v1/stock-alerts/queue": ["get"],
        "/api/v1/knowledge/search": ["get"],
        "/api/v1/knowledge/documents": ["get", "post"],
        "/api/v1/knowledge/documents/{id}": ["delete", "get"],
        "/api/v1/campaigns": ["get", "post"],
        "/api/v1/campaigns/{id}": ["delete", "get", "patch"],
        "/api/v1/campaigns/{id}/approve": ["post"],
        "/api/v1/campaigns/{id}/pause": ["post"],
        "/api/v1/campaigns/{id}/resume": ["post"],
        "/api/v1/campaigns/{id}/evaluate": ["post"],
        "/api/v1/campaigns/{id}/metrics": ["get", "post"],
        "/api/v1/campaigns/{id}/evaluations": ["get"],
        "/api/v1/campaigns/evaluate": ["post"],
    }


@pytest.mark.parametrize("endpoint", ["products", "orders", "product-stats", "sentiment-mentions"])
def test_detail_paths_take_an_integer_id(schema, endpoint):
    parameters = schema["paths"][f"/api/v1/{endpoint}/{{id}}"]["get"]["parameters"]

    id_parameter = next(parameter for parameter in parameters if parameter["name"] == "id")
    assert (id_parameter["in"], id_parameter["required"], id_parameter["schema"]) == ("path", True, {"type": "integer"})


def test_schema_documents_token_and_session_authentication(schema):
    assert schema["components"]["securitySchemes"] == {
        "tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization"},
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert sorted(operation["security"], key=str) == [{"cookieAuth": []}, {"tokenAuth": []}], (path, method)


def test_schema_documents_the_product_filters_and_the_patch_body(schema):
    products = schema["paths"]["/api/v1/products"]["get"]
    names = {parameter["name"] for parameter in products["parameters"]}
    patch_body = schema["paths"]["/api/v1/products/{id}"]["patch"]["requestBody"]["content"]["application/json"]

    assert {"in_stock", "category", "min_price", "max_price", "search", "ordering", "page", "page_size"} <= names
    request_component = patch_body["schema"]["$ref"].rsplit("/", 1)[-1]
    assert sorted(schema["components"]["schemas"][request_component]["properties"]) == [
        "price",
        "status",
        "stock_quantity",
    ]


def test_docs_render_html_from_local_static_files(db, client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    ]
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")) is not None, asset
    assert re.findall(r"https?://", html) == []
    assert "cdn" not in html.lower()
    assert 'url: "/api/schema/"' in html


def _generate(tmp_path, capsys, *options: str) -> list[str]:
    """Run ``manage.py spectacular``; return the warnings it printed."""
    GENERATOR_STATS.reset()  # warnings of earlier schema requests in this process would count
    capsys.readouterr()
    target = tmp_path / "schema.yaml"
    try:
        call_command("spectacular", "--file", str(target), *options)
    finally:
        printed = capsys.readouterr().err
        GENERATOR_STATS.reset()
    assert yaml.safe_load(target.read_text())["openapi"].startswith("3.")
    return [line for line in printed.splitlines() if "Warning" in line and not line.startswith("Warnings:")]


def test_spectacular_validate_passes(db, tmp_path, capsys):
    _generate(tmp_path, capsys, "--validate")


def test_schema_generates_without_warnings(db, tmp_path, capsys):
    warnings = _generate(tmp_path, capsys, "--validate")

    assert warnings == []
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "strict.yaml"))
