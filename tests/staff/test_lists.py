"""The read side staff need to see what the forms brought in: auth, filters, cursor paging."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_contact
from tests.helpers import donation_body, volunteer_body

LISTS = ["/api/v1/contacts", "/api/v1/volunteers", "/api/v1/donation-inquiries"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer crm_not-a-real-token", "Basic dXNlcjpwYXNz"])
def test_lists_need_a_valid_staff_token(client, path, header):
    r = client.get(path, headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert "bearer" in r.headers.get("www-authenticate", "").lower()


@pytest.mark.parametrize("path", LISTS)
def test_viewer_reads_every_list(client, auth, path):
    r = client.get(path, headers=auth("viewer"))
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}


def _all_pages(client: Any, path: str, headers: dict[str, str], **params: Any) -> list[list[Any]]:
    pages, cursor = [], None
    while True:
        r = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_contacts_filters_and_paging(client, session, auth):
    for i in range(5):
        make_contact(session, email=f"carer{i}@example.org", role="caregiver", interests=["caregiving"],
                     first_name=f"Carer{i}")
    make_contact(session, email="pat@example.org", role="patient", tags=["gala-2026"], first_name="Patricia")
    make_contact(session, email="gone@example.org", status="unsubscribed")
    session.commit()
    h = auth("viewer")

    pages = _all_pages(client, "/api/v1/contacts", h, limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    ids = [c["id"] for p in pages for c in p]
    assert len(set(ids)) == 7 and ids == sorted(ids, reverse=True)

    def emails(**params: Any) -> set[str]:
        return {c["email"] for p in _all_pages(client, "/api/v1/contacts", h, **params) for c in p}

    assert emails(role="caregiver") == {f"carer{i}@example.org" for i in range(5)}
    assert emails(interest="caregiving", limit=3) == {f"carer{i}@example.org" for i in range(5)}
    assert emails(tag="gala-2026") == {"pat@example.org"}
    assert emails(status="unsubscribed") == {"gone@example.org"}
    assert emails(q="PATRIC") == {"pat@example.org"}

    [pat] = client.get("/api/v1/contacts", params={"q": "pat@"}, headers=h).json()["items"]
    assert {"id", "email", "first_name", "last_name", "status", "role", "language", "interests", "tags",
            "subscriptions"} <= set(pat)
    assert pat["tags"] == ["gala-2026"] and pat["role"] == "patient"


@pytest.mark.parametrize("params", [{"status": "sleeping"}, {"role": "wizard"}, {"cursor": "%%%"}, {"limit": 0}])
def test_contacts_bad_filters_are_400(client, auth, params):
    r = client.get("/api/v1/contacts", params=params, headers=auth("viewer"))
    assert r.status_code == 400


def test_volunteers_from_the_form_filtered_and_paged(client, auth):
    for i in range(3):
        client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(
            email=f"v{i}@example.org", areas=["events"], availability=["weekends"], postal_code=f"3030{i}"))
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(
        email="drive@example.org", areas=["transport-to-treatment"], availability=["weekday-daytime"]))
    h = auth("viewer")
    pages = _all_pages(client, "/api/v1/volunteers", h, limit=3)
    assert [len(p) for p in pages] == [3, 1]
    vol = pages[0][0]
    assert {"id", "contact_id", "email", "first_name", "last_name", "status", "areas", "availability",
            "postal_code"} <= set(vol)
    events = _all_pages(client, "/api/v1/volunteers", h, area="events")
    assert {v["email"] for p in events for v in p} == {f"v{i}@example.org" for i in range(3)}
    daytime = _all_pages(client, "/api/v1/volunteers", h, availability="weekday-daytime")
    assert [v["email"] for p in daytime for v in p] == ["drive@example.org"]
    assert client.get("/api/v1/volunteers", params={"area": "juggling"}, headers=h).status_code == 400


def test_donation_inquiries_from_the_form_filtered_and_paged(client, auth):
    for i in range(3):
        client.post("/api/v1/forms/donation-inquiry", json=donation_body(email=f"d{i}@example.org"))
    client.post("/api/v1/forms/donation-inquiry", json=donation_body(
        email="memory@example.org", inquiry_type="tribute-memorial", in_honor_of="my father"))
    h = auth("viewer")
    pages = _all_pages(client, "/api/v1/donation-inquiries", h, limit=2)
    assert [len(p) for p in pages] == [2, 2]
    tribute = client.get("/api/v1/donation-inquiries", params={"type": "tribute-memorial"}, headers=h).json()
    [item] = tribute["items"]
    assert item["email"] == "memory@example.org" and item["in_honor_of"] == "my father"
    assert item["status"] == "new"
    news = client.get("/api/v1/donation-inquiries", params={"status": "new"}, headers=h).json()["items"]
    assert len(news) == 4
    assert client.get("/api/v1/donation-inquiries", params={"type": "bitcoin"}, headers=h).status_code == 400
