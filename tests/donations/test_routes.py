"""The donor-services queue over HTTP: roles, filters, working an inquiry to closed."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.helpers import donation_body, text_of, to

ROUTES = [
    ("GET", "/api/v1/donation-inquiries", "viewer"),
    ("GET", "/api/v1/donation-inquiries/1", "viewer"),
    ("PATCH", "/api/v1/donation-inquiries/1", "editor"),
]


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_role_checks(client, auth, method, path, needs):
    kwargs = {"json": {}} if method == "PATCH" else {}
    assert client.request(method, path, **kwargs).status_code == 401
    if needs == "editor":
        assert client.request(method, path, headers=auth("viewer"), **kwargs).status_code == 403
    assert client.request(method, path, headers=auth(needs), **kwargs).status_code not in (401, 403)


def _only_id(client, auth, **params):
    items = client.get("/api/v1/donation-inquiries", params=params, headers=auth("viewer")).json()["items"]
    return [i["id"] for i in items]


def test_work_the_queue_to_closed(client, auth, sent):
    body = donation_body(inquiry_type="tribute-memorial", in_honor_of="my mother", amount_range="$500-$1,000")
    assert client.post("/api/v1/forms/donation-inquiry", json=body).status_code == 202
    [iid] = _only_id(client, auth, status="new", type="tribute-memorial")
    url = f"/api/v1/donation-inquiries/{iid}"
    editor = auth("editor")

    r = client.patch(url, headers=editor, json={"assigned_to": "admin@staff.example.org"})
    assert r.status_code == 200 and r.json()["status"] == "assigned"
    assert r.json()["assigned_to"] == "admin@staff.example.org"
    r = client.patch(url, headers=editor, json={"assigned_to": "nobody@example.org"})
    assert r.status_code == 400 and "assigned_to" in r.json()["errors"]

    r = client.patch(url, headers=editor, json={"status": "answered", "answer": "We would be honoured to help."})
    assert r.status_code == 200 and r.json()["answer"] == "We would be honoured to help."
    assert client.patch(url, headers=editor, json={"status": "new"}).status_code == 409
    assert client.patch(url, headers=editor, json={"status": "waiting"}).status_code == 400
    r = client.patch(url, headers=editor, json={"status": "closed"})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closed_at"]
    assert client.get(url, headers=auth("viewer")).json()["status"] == "closed"

    messages = sent()
    answer = [m for m in to(messages, "di@example.org") if "honoured" in text_of(m)]
    assert len(answer) == 1
    # Staff notices never carry amounts.
    [notice] = to(messages, "donations@example.org")
    assert "500" not in text_of(notice) and "my mother" in text_of(notice)
    # A tribute or memorial inquiry marks the person, so patient-journey segments can leave them out.
    [contact] = client.get("/api/v1/contacts?q=di@example.org", headers=auth("viewer")).json()["items"]
    assert contact["bereaved"] is True


def test_filters_and_overdue_flag(client, auth, settings):
    with time_machine.travel(dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC), tick=False) as clock:
        client.post("/api/v1/forms/donation-inquiry", json=donation_body(email="old@example.org"))
        clock.shift(dt.timedelta(hours=settings.donation_overdue_hours + 1))
        client.post("/api/v1/forms/donation-inquiry", json=donation_body(email="new@example.org",
                                                                         inquiry_type="stock-or-daf"))
        items = client.get("/api/v1/donation-inquiries", headers=auth("viewer")).json()["items"]
        flags = {i["email"]: i["overdue"] for i in items}
        assert flags == {"old@example.org": True, "new@example.org": False}
        assert [i["email"] for i in client.get("/api/v1/donation-inquiries?overdue=true",
                                               headers=auth("viewer")).json()["items"]] == ["old@example.org"]
        assert [i["email"] for i in client.get("/api/v1/donation-inquiries?older_than_hours=1",
                                               headers=auth("viewer")).json()["items"]] == ["old@example.org"]
        assert [i["email"] for i in client.get("/api/v1/donation-inquiries?type=stock-or-daf",
                                               headers=auth("viewer")).json()["items"]] == ["new@example.org"]
    assert client.get("/api/v1/donation-inquiries?type=cash", headers=auth("viewer")).status_code == 400
    assert client.get("/api/v1/donation-inquiries?older_than_hours=-1", headers=auth("viewer")).status_code == 400


def test_missing_inquiry_is_404(client, auth):
    assert client.get("/api/v1/donation-inquiries/77", headers=auth("viewer")).status_code == 404
    assert client.patch("/api/v1/donation-inquiries/77", headers=auth("editor"), json={"status": "closed"}
                        ).status_code == 404
