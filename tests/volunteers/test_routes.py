"""The volunteer API over HTTP: roles, the pipeline, opportunities, the "I'm interested" page."""

from __future__ import annotations

import pytest

from crm.db import session_scope
from tests.factories import make_volunteer
from tests.helpers import link_path, to, volunteer_body
from tests.volunteers.invites import send_invitations

OPP = {"title": "Lodge evening host", "area": "lodging-support", "postal_code": "30309", "needed": 2,
       "schedule": "Weekday evenings", "description": "Welcome guests at the lodge."}

ROUTES = [
    ("GET", "/api/v1/volunteers", "viewer"),
    ("GET", "/api/v1/volunteers/1", "viewer"),
    ("PATCH", "/api/v1/volunteers/1", "editor"),
    ("GET", "/api/v1/volunteers/opportunities", "viewer"),
    ("POST", "/api/v1/volunteers/opportunities", "editor"),
    ("GET", "/api/v1/volunteers/opportunities/1", "viewer"),
    ("PATCH", "/api/v1/volunteers/opportunities/1", "editor"),
    ("GET", "/api/v1/volunteers/opportunities/1/matches", "viewer"),
    ("POST", "/api/v1/volunteers/opportunities/1/notify", "editor"),
]


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_role_checks(client, auth, method, path, needs):
    kwargs = {"json": {}} if method in ("POST", "PATCH") else {}
    assert client.request(method, path, **kwargs).status_code == 401
    assert client.request(method, path, headers={"Authorization": "Bearer nope"}, **kwargs).status_code == 401
    if needs == "editor":
        assert client.request(method, path, headers=auth("viewer"), **kwargs).status_code == 403
    # The weakest role allowed gets past the guard (to a 404 / 400 / 200, never 401/403).
    assert client.request(method, path, headers=auth(needs), **kwargs).status_code not in (401, 403)


def _vol_id(client, auth, email="vic@example.org"):
    items = client.get("/api/v1/volunteers", headers=auth("viewer")).json()["items"]
    return next(v["id"] for v in items if v["email"] == email)


def test_form_to_active_with_history(client, auth, sent):
    assert client.post("/api/v1/forms/volunteer-interest", json=volunteer_body()).status_code == 202
    vid = _vol_id(client, auth)
    for status in ("contacted", "onboarding", "active"):
        r = client.patch(f"/api/v1/volunteers/{vid}", headers=auth("editor"),
                         json={"status": status, "note": f"now {status}", "send_email": status == "onboarding"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    got = client.get(f"/api/v1/volunteers/{vid}", headers=auth("viewer")).json()
    moves = [(h["from_status"], h["to_status"], h["actor"]) for h in got["history"]]
    assert moves == [(None, "interested", "form"),
                     ("interested", "contacted", "editor@staff.example.org"),
                     ("contacted", "onboarding", "editor@staff.example.org"),
                     ("onboarding", "active", "editor@staff.example.org")]
    assert got["last_contacted_at"] is not None
    subjects = [m["Subject"] for m in to(sent(), "vic@example.org")]
    assert "Your next steps as a volunteer" in subjects
    assert "You are now an active volunteer" not in subjects  # not asked for


def test_illegal_and_unknown_moves_are_400_naming_them(client, auth):
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body())
    vid = _vol_id(client, auth)
    r = client.patch(f"/api/v1/volunteers/{vid}", headers=auth("editor"), json={"status": "active"})
    assert r.status_code == 400
    assert "interested" in r.json()["errors"]["status"] and "active" in r.json()["errors"]["status"]
    r = client.patch(f"/api/v1/volunteers/{vid}", headers=auth("editor"), json={"status": "retired"})
    assert r.status_code == 400 and "retired" in r.json()["errors"]["status"]
    assert client.patch("/api/v1/volunteers/999", headers=auth("editor"), json={"note": "x"}).status_code == 404
    assert client.get(f"/api/v1/volunteers/{vid}", headers=auth("viewer")).json()["status"] == "interested"


def test_list_filters_over_http(client, auth, settings):
    with session_scope(settings) as s:
        make_volunteer(s, email="es@example.org", language="es", postal_code="30301")
        make_volunteer(s, email="en@example.org", postal_code="94110", status="interested")
    h = auth("viewer")
    emails = lambda q: {v["email"] for v in client.get(f"/api/v1/volunteers?{q}", headers=h).json()["items"]}  # noqa: E731
    assert emails("language=es") == {"es@example.org"}
    assert emails("postal_code=941") == {"en@example.org"}
    assert emails("status=interested&area=transport-to-treatment") == {"en@example.org"}
    assert emails("never_contacted=true") == {"es@example.org", "en@example.org"}
    assert emails("contacted_after=2026-01-01") == set()
    assert client.get("/api/v1/volunteers?contacted_before=yesterday", headers=h).status_code == 400
    assert client.get("/api/v1/volunteers?language=fr", headers=h).status_code == 400


def test_list_pages_with_a_cursor(client, auth, settings):
    with session_scope(settings) as s:
        for _ in range(3):
            make_volunteer(s)
    first = client.get("/api/v1/volunteers?limit=2", headers=auth("viewer")).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(f"/api/v1/volunteers?limit=2&cursor={first['next_cursor']}", headers=auth("viewer")).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_opportunity_crud_matches_notify_and_respond(client, auth, settings):
    with session_scope(settings) as s:
        make_volunteer(s, email="host@example.org", first_name="Hana", areas=["lodging-support"],
                       availability=["weekday-evenings"])
        make_volunteer(s, email="driver@example.org", areas=["transport-to-treatment"])
    r = client.post("/api/v1/volunteers/opportunities", headers=auth("editor"), json=OPP)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    assert r.json()["responses"] == [] and r.json()["created_by"] == "editor@staff.example.org"
    r = client.patch(f"/api/v1/volunteers/opportunities/{oid}", headers=auth("editor"),
                     json={"availability": "weekday-evenings", "needed": 4})
    assert r.status_code == 200 and r.json()["needed"] == 4
    assert [o["id"] for o in client.get("/api/v1/volunteers/opportunities", headers=auth("viewer")).json()["items"]] \
        == [oid]
    matches = client.get(f"/api/v1/volunteers/opportunities/{oid}/matches", headers=auth("viewer")).json()["items"]
    assert [m["email"] for m in matches] == ["host@example.org"]

    r = client.post(f"/api/v1/volunteers/opportunities/{oid}/notify", headers=auth("editor"))
    assert r.status_code == 202 and r.json()["queued"] == 1
    assert client.post(f"/api/v1/volunteers/opportunities/{oid}/notify", headers=auth("editor")).json()["queued"] == 0
    [msg] = to(send_invitations(settings), "host@example.org")
    path = link_path(msg, "respond")

    page = client.get(path)
    assert page.status_code == 200 and "Lodge evening host" in page.text and "<form" in page.text
    assert client.get(f"/api/v1/volunteers/opportunities/{oid}", headers=auth("viewer")).json()["responses"] == []
    for _ in range(2):
        thanks = client.post(path)
        assert thanks.status_code == 200 and "Thank you, Hana" in thanks.text
    got = client.get(f"/api/v1/volunteers/opportunities/{oid}", headers=auth("viewer")).json()
    assert [x["email"] for x in got["responses"]] == ["host@example.org"] and got["response_count"] == 1
    assert "Thank you" in client.get(path).text  # already responded: the page says so


def test_bad_opportunity_is_400_and_missing_is_404(client, auth):
    r = client.post("/api/v1/volunteers/opportunities", headers=auth("editor"), json={**OPP, "area": "x", "title": ""})
    assert r.status_code == 400 and {"area", "title"} <= set(r.json()["errors"])
    assert client.get("/api/v1/volunteers/opportunities/42", headers=auth("viewer")).status_code == 404
    assert client.get("/api/v1/volunteers/opportunities/42/matches", headers=auth("viewer")).status_code == 404
    assert client.post("/api/v1/volunteers/opportunities/42/notify", headers=auth("editor")).status_code == 404


def test_a_bad_respond_link_gets_a_plain_page(client):
    for method in ("GET", "POST"):
        r = client.request(method, "/respond/not-a-token")
        assert r.status_code == 400 and "This link does not work" in r.text
