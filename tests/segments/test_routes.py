"""Staff API for segments: roles, CRUD, count and preview (audited)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.db import session_scope
from crm.staff.models import AuditEvent
from tests.factories import make_contact

RULES = {"all": [{"interest": {"any": ["caregiving"]}}, {"language": "es"}]}


@pytest.fixture
def population(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as s:
        ana = make_contact(s, email="ana@example.org", language="es", interests=["caregiving"],
                           lists={"newsletter": "confirmed"})
        bea = make_contact(s, email="bea@example.org", language="es", interests=["caregiving"],
                           lists={"newsletter": "pending"})
        make_contact(s, email="cal@example.org", language="en", interests=["caregiving"])
        return {"ana": ana.id, "bea": bea.id}  # type: ignore[dict-item]


def _create(client: Any, auth: Any, name: str = "Spanish caregivers", rules: Any = None) -> dict[str, Any]:
    r = client.post("/api/v1/segments", json={"name": name, "description": "for the walk", "rules": rules or RULES},
                    headers=auth("editor"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


ROUTES = [
    ("GET", "/api/v1/segments", None, "viewer"),
    ("POST", "/api/v1/segments", {"name": "x", "rules": {"all": []}}, "editor"),
    ("GET", "/api/v1/segments/{id}", None, "viewer"),
    ("PUT", "/api/v1/segments/{id}", {"name": "y"}, "editor"),
    ("DELETE", "/api/v1/segments/{id}", None, "editor"),
    ("GET", "/api/v1/segments/{id}/count", None, "viewer"),
    ("POST", "/api/v1/segments/preview", {"rules": {"all": []}}, "viewer"),
]


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_route_needs_a_token_and_the_role(client: Any, auth: Any, method: str, path: str, body: Any,
                                                least: str) -> None:
    seg = _create(client, auth)
    url = path.format(id=seg["id"])
    assert client.request(method, url, json=body).status_code == 401
    assert client.request(method, url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    if least == "editor":
        assert client.request(method, url, json=body, headers=auth("viewer")).status_code == 403
    ok = client.request(method, url, json=body, headers=auth(least))
    assert ok.status_code < 300, ok.text


def test_segment_crud(client: Any, auth: Any) -> None:
    seg = _create(client, auth)
    assert seg["name"] == "Spanish caregivers" and seg["rules"] == RULES and seg["created_by"] == "editor@staff.example.org"
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=auth("viewer")).json() == seg

    r = client.put(f"/api/v1/segments/{seg['id']}", json={"rules": {"language": "en"}}, headers=auth("editor"))
    assert r.status_code == 200 and r.json()["rules"] == {"language": "en"} and r.json()["name"] == seg["name"]

    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=auth("editor")).status_code == 204
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=auth("viewer")).status_code == 404
    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=auth("editor")).status_code == 404


def test_list_pages_with_a_cursor(client: Any, auth: Any) -> None:
    made = [_create(client, auth, name=f"segment {i}")["id"] for i in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/v1/segments", params=params, headers=auth("viewer")).json()
        seen += [s["id"] for s in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    assert client.get("/api/v1/segments", params={"cursor": "garbage!"}, headers=auth("viewer")).status_code == 400


def test_bad_rules_are_a_400_naming_the_path(client: Any, auth: Any) -> None:
    rules = {"all": [{"language": "es"}, {"role": "patient"}, {"interest": {"anyy": ["caregiving"]}}]}
    r = client.post("/api/v1/segments", json={"name": "bad", "rules": rules}, headers=auth("editor"))
    assert r.status_code == 400
    assert "unknown key" in r.json()["errors"]["rules.all[2].interest.anyy"]
    r = client.post("/api/v1/segments", json={"name": "bad", "rules": {"interest": {"any": ["nope"]}}},
                    headers=auth("editor"))
    assert r.status_code == 400 and "'nope'" in r.json()["errors"]["rules.interest.any"]
    r = client.post("/api/v1/segments/preview", json={"rules": {"frobnicate": 1}}, headers=auth("viewer"))
    assert r.status_code == 400 and "rules.frobnicate" in r.json()["errors"]
    r = client.post("/api/v1/segments/preview", json={"rules": {}, "lists": "x"}, headers=auth("viewer"))
    assert r.status_code == 400 and "lists" in r.json()["errors"]
    r = client.post("/api/v1/segments/preview", json={"list": "newsletter"}, headers=auth("viewer"))
    assert r.status_code == 400 and "rules" in r.json()["errors"]
    r = client.post("/api/v1/segments", json={"rules": RULES}, headers=auth("editor"))
    assert r.status_code == 400 and "name" in r.json()["errors"]
    seg = _create(client, auth)
    r = client.put(f"/api/v1/segments/{seg['id']}", json={"rules": {"all": "x"}}, headers=auth("editor"))
    assert r.status_code == 400
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=auth("viewer")).json()["rules"] == RULES


def test_a_duplicate_name_is_a_409(client: Any, auth: Any) -> None:
    _create(client, auth, name="Donors")
    r = client.post("/api/v1/segments", json={"name": "Donors", "rules": {"all": []}}, headers=auth("editor"))
    assert r.status_code == 409


def test_a_segment_used_by_a_campaign_cannot_be_deleted(client: Any, auth: Any, settings: Settings) -> None:
    seg = _create(client, auth)
    with session_scope(settings) as s:
        s.add(Campaign(name="Walk", segment_id=seg["id"]))
    r = client.delete(f"/api/v1/segments/{seg['id']}", headers=auth("editor"))
    assert r.status_code == 409 and "campaign" in r.json()["detail"]
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=auth("viewer")).status_code == 200


def test_count_is_raw_or_through_a_list_and_is_audited(client: Any, auth: Any, population: dict[str, int],
                                                       settings: Settings) -> None:
    seg = _create(client, auth)
    raw = client.get(f"/api/v1/segments/{seg['id']}/count", headers=auth("viewer")).json()
    assert raw["count"] == 2
    assert [c["id"] for c in raw["sample"]] == [population["bea"], population["ana"]]
    assert {"email", "first_name", "interests", "subscriptions"} <= set(raw["sample"][0])
    gated = client.get(f"/api/v1/segments/{seg['id']}/count", params={"list": "newsletter"},
                       headers=auth("viewer")).json()
    assert gated["count"] == 1 and [c["email"] for c in gated["sample"]] == ["ana@example.org"]
    r = client.get(f"/api/v1/segments/{seg['id']}/count", params={"list": "gossip"}, headers=auth("viewer"))
    assert r.status_code == 400 and "list" in r.json()["errors"]
    with session_scope(settings) as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.staff_email, e.action, e.target, e.rows) for e in events] == [
        ("viewer@staff.example.org", "segment.preview", f"segment:{seg['id']}", 2),
        ("viewer@staff.example.org", "segment.preview", f"segment:{seg['id']}", 1),
    ]


def test_preview_of_an_unsaved_tree(client: Any, auth: Any, population: dict[str, int], settings: Settings) -> None:
    r = client.post("/api/v1/segments/preview", json={"rules": RULES, "list": "newsletter"}, headers=auth("editor"))
    assert r.status_code == 200
    assert r.json()["count"] == 1 and r.json()["sample"][0]["id"] == population["ana"]
    r = client.post("/api/v1/segments/preview", json={"rules": {"language": "en"}}, headers=auth("editor"))
    assert r.json()["count"] == 1
    with session_scope(settings) as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "segment.preview")))
    assert [(e.target, e.rows) for e in events] == [("segment:unsaved", 1), ("segment:unsaved", 1)]
    assert client.get("/api/v1/segments/999/count", headers=auth("viewer")).status_code == 404
