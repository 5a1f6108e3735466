"""The API docs: every staff operation needs a Bearer token, and /schema renders with no internet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm.config import Settings
from tests.harness import api_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in {"get", "post", "put", "patch", "delete"}]


def _staff(path: str) -> bool:
    public = ("/api/v1/forms", "/api/v1/interests", "/api/v1/preferences", "/api/v1/webhooks", "/api/v1/links",
              "/api/v1/volunteer-portal")
    return path.startswith("/api/v1/") and not path.startswith(public)


def test_staff_operations_declare_the_bearer_scheme(client: Any) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http", "scheme": "bearer", "description": "a staff API token (`crm staff create`)"}
    staff_ops = [(path, method, op) for path, method, op in _operations(document) if _staff(path)]
    assert len(staff_ops) > 30
    assert [(p, m) for p, m, op in staff_ops if op.get("security") != [{"BearerToken": []}]] == []
    public = [op for path, _m, op in _operations(document) if path.startswith("/api/v1/forms")]
    assert public and all("security" not in op for op in public)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _bare(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Nothing said about the body: no schema at all (`Any`), or an object with no members named
    (what Swagger shows for `dict[str, Any]`)."""
    schema = _resolve(document, schema)
    if not schema:
        return True
    if "oneOf" in schema or "anyOf" in schema:
        return any(_bare(document, s) for s in schema.get("oneOf", schema.get("anyOf", [])) if s.get("type") != "null")
    return schema.get("type") == "object" and not schema.get("properties")


def test_every_api_body_is_described(client: Any) -> None:
    """Staff and public: every JSON request body and every 2xx JSON answer has a typed schema."""
    document = client.get("/schema/openapi.json").json()
    bare = []
    for path, method, op in _operations(document):
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            if "json" in media_type and _bare(document, media.get("schema", {})):
                bare.append(f"{method} {path} request")
        for status, response in op.get("responses", {}).items():
            for media_type, media in response.get("content", {}).items():
                if status.startswith("2") and "json" in media_type and _bare(document, media.get("schema", {})):
                    bare.append(f"{method} {path} {status}")
    assert bare == []


def test_swagger_assets_are_served_by_the_app(client: Any) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/static/vendor/swagger-ui/{asset}" in page.text
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200


@pytest.mark.browser
@pytest.mark.integration
def test_schema_page_renders_offline_in_chromium(settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    api, base = api_server(settings, tmp_path / "api.log")
    refused: list[str] = []

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.route("**/*", only_the_app)
            page.goto(f"{base}/schema")
            page.wait_for_selector(".opblock", timeout=20_000)
            assert page.locator(".opblock").count() > 30
            assert page.locator("button.authorize").count() == 1
            browser.close()
    finally:
        api.stop()
    assert refused == []
