"""Staff API for content items: roles, CRUD, validation, filters and paging."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm.config import Settings
from crm.content.models import ContentTopic
from crm.db import session_scope

ITEM = {
    "title": "Immunomodulators and Their Side Effects",
    "url": "https://www.example.org/articles/immunomodulators",
    "summary": "What to expect, and what to ask.",
    "topics": ["treatment-and-side-effects", "cancer-information"],
    "published_at": "2026-11-20",
}


def _create(client: Any, auth: Any, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/content", json=ITEM | overrides, headers=auth("editor"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


ROUTES = [
    ("GET", "/api/v1/content", None, "viewer"),
    ("POST", "/api/v1/content", ITEM, "editor"),
    ("GET", "/api/v1/content/{id}", None, "viewer"),
    ("PATCH", "/api/v1/content/{id}", {"summary": "new"}, "editor"),
    ("DELETE", "/api/v1/content/{id}", None, "editor"),
]


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_route_needs_a_token_and_the_role(client: Any, auth: Any, method: str, path: str, body: Any,
                                                least: str) -> None:
    url = path.format(id=_create(client, auth)["id"])
    assert client.request(method, url, json=body).status_code == 401
    if least == "editor":
        assert client.request(method, url, json=body, headers=auth("viewer")).status_code == 403
    ok = client.request(method, url, json=body, headers=auth(least))
    assert ok.status_code < 300, ok.text


def test_content_crud(client: Any, auth: Any, settings: Settings) -> None:
    item = _create(client, auth)
    assert item["title"] == ITEM["title"] and item["language"] == "en"
    assert item["topics"] == ["cancer-information", "treatment-and-side-effects"]
    assert item["published_at"].startswith("2026-11-20T00:00:00") and item["revised_at"] is None
    assert client.get(f"/api/v1/content/{item['id']}", headers=auth("viewer")).json() == item

    r = client.patch(f"/api/v1/content/{item['id']}", headers=auth("editor"),
                     json={"topics": ["clinical-trials"], "language": "es", "revised_at": "2026-11-22T10:00:00Z"})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["topics"] == ["clinical-trials"] and changed["language"] == "es"
    assert changed["revised_at"].startswith("2026-11-22T10:00:00") and changed["title"] == ITEM["title"]

    fresh = _create(client, auth, published_at=None)
    assert fresh["published_at"] is None
    body = {k: v for k, v in ITEM.items() if k != "published_at"}
    assert client.post("/api/v1/content", json=body, headers=auth("editor")).json()["published_at"] is not None

    assert client.delete(f"/api/v1/content/{item['id']}", headers=auth("editor")).status_code == 204
    assert client.get(f"/api/v1/content/{item['id']}", headers=auth("viewer")).status_code == 404
    assert client.patch(f"/api/v1/content/{item['id']}", json={}, headers=auth("editor")).status_code == 404
    with session_scope(settings) as s:
        assert list(s.scalars(select(ContentTopic).where(ContentTopic.content_id == item["id"]))) == []


@pytest.mark.parametrize(("body", "field", "why"), [
    ({"topics": ["caregiving", "gardening"]}, "topics", "'gardening'"),
    ({"topics": "caregiving"}, "topics", "list"),
    ({"url": "javascript:alert(1)"}, "url", "http"),
    ({"url": "ftp://example.org/x"}, "url", "http"),
    ({"language": "fr"}, "language", "'fr'"),
    ({"published_at": "soon"}, "published_at", "date"),
    ({"title": ""}, "title", "required"),
    ({"title": "a\nb"}, "title", "line breaks"),
    ({"colour": "red"}, "colour", "unknown field"),
])
def test_bad_input_is_a_400_naming_the_field(client: Any, auth: Any, body: dict[str, Any], field: str,
                                             why: str) -> None:
    r = client.post("/api/v1/content", json=ITEM | body, headers=auth("editor"))
    assert r.status_code == 400, r.text
    assert why in r.json()["errors"][field]


def test_a_bad_patch_changes_nothing(client: Any, auth: Any) -> None:
    item = _create(client, auth)
    r = client.patch(f"/api/v1/content/{item['id']}", json={"title": "New", "topics": ["nope"]},
                     headers=auth("editor"))
    assert r.status_code == 400 and "topics" in r.json()["errors"]
    assert client.get(f"/api/v1/content/{item['id']}", headers=auth("viewer")).json() == item


def test_list_filters_and_pages(client: Any, auth: Any) -> None:
    a = _create(client, auth, topics=["caregiving"])["id"]
    b = _create(client, auth, topics=["caregiving", "clinical-trials"], language="es")["id"]
    c = _create(client, auth, topics=["clinical-trials"])["id"]

    def ids(**params: Any) -> list[int]:
        r = client.get("/api/v1/content", params=params, headers=auth("viewer"))
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids() == [c, b, a]
    assert ids(topic="caregiving") == [b, a]
    assert ids(language="es") == [b]
    assert ids(topic="clinical-trials", language="en") == [c]
    first = client.get("/api/v1/content", params={"limit": 2}, headers=auth("viewer")).json()
    assert [i["id"] for i in first["items"]] == [c, b] and first["next_cursor"]
    rest = client.get("/api/v1/content", params={"limit": 2, "cursor": first["next_cursor"]},
                      headers=auth("viewer")).json()
    assert [i["id"] for i in rest["items"]] == [a] and rest["next_cursor"] is None
    assert client.get("/api/v1/content", params={"topic": "nope"}, headers=auth("viewer")).status_code == 400
    assert client.get("/api/v1/content", params={"language": "de"}, headers=auth("viewer")).status_code == 400
