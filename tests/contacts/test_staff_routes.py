"""Staff contact API: create, read, patch, erase, data-subject export, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm.campaigns.models import Campaign, Delivery
from crm.contacts.models import ConsentEvent, Contact, Suppression
from crm.db import session_scope
from crm.forms.models import FormSubmission
from crm.outbox.models import OutboxMessage
from crm.staff.models import AuditEvent
from crm.volunteers.models import Volunteer
from tests.factories import make_contact, make_volunteer
from tests.helpers import newsletter_body, volunteer_body


def _create(client: Any, auth: Any, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/contacts", json={"email": "Kim.Lee@Example.org", **body}, headers=auth("editor"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_create_read_patch(client: Any, auth: Any, settings: Any) -> None:
    c = _create(client, auth, first_name="Kim", role="caregiver", interests=["caregiving"], tags=["walk-2026"],
                subscriptions={"newsletter": "confirmed"})
    assert c["email"] == "Kim.Lee@example.org"
    assert c["subscriptions"] == {"newsletter": "confirmed"} and c["interests"] == ["caregiving"]
    got = client.get(f"/api/v1/contacts/{c['id']}", headers=auth("viewer")).json()
    assert got["tags"] == ["walk-2026"]
    r = client.patch(f"/api/v1/contacts/{c['id']}", headers=auth("editor"),
                     json={"language": "es", "interests": ["clinical-trials"], "tags": [], "role": "family"})
    assert r.status_code == 200, r.text
    assert (r.json()["language"], r.json()["interests"], r.json()["tags"], r.json()["role"]) == \
        ("es", ["clinical-trials"], [], "family")
    with session_scope(settings) as s:
        event = s.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == c["id"])).one()
        assert (event.action, event.source, event.staff_email) == ("staff-confirm", "staff", "editor@staff.example.org")


def test_create_rejects_bad_fields_and_duplicates(client: Any, auth: Any) -> None:
    r = client.post("/api/v1/contacts", headers=auth("editor"),
                    json={"email": "nope", "role": "wizard", "interests": ["astrology"], "shoe": 1})
    assert r.status_code == 400
    assert set(r.json()["errors"]) >= {"email", "role", "interests", "shoe"}
    _create(client, auth)
    r = client.post("/api/v1/contacts", json={"email": "kim.lee@EXAMPLE.org"}, headers=auth("editor"))
    assert r.status_code == 409


def test_patch_email_to_anothers_address_conflicts(client: Any, auth: Any) -> None:
    a = _create(client, auth)
    b = client.post("/api/v1/contacts", json={"email": "other@example.org"}, headers=auth("editor")).json()
    r = client.patch(f"/api/v1/contacts/{b['id']}", json={"email": "KIM.LEE@example.org"}, headers=auth("editor"))
    assert r.status_code == 409 and a["id"] != b["id"]


def test_staff_cannot_reconfirm_a_suppressed_or_unsubscribed_person(client: Any, auth: Any, session: Any) -> None:
    c = make_contact(session, email="left@example.org", lists={"newsletter": "unsubscribed"})
    session.commit()
    r = client.patch(f"/api/v1/contacts/{c.id}", json={"subscriptions": {"newsletter": "confirmed"}},
                     headers=auth("editor"))
    assert r.status_code == 409 and "unsubscribed" in r.json()["detail"]
    from crm.contacts import service

    service.suppress(session, "left@example.org", "complained")
    session.commit()
    r = client.patch(f"/api/v1/contacts/{c.id}", json={"subscriptions": {"volunteer-updates": "confirmed"}},
                     headers=auth("editor"))
    assert r.status_code == 409 and "complained" in r.json()["detail"]


def test_erasure_forgets_the_person_and_keeps_statistics(client: Any, auth: Any, settings: Any) -> None:
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(email="vic@example.org", message="My mum"))
    client.post("/api/v1/forms/newsletter", json=newsletter_body(email="vic@example.org"))
    with session_scope(settings) as s:
        contact = s.scalars(select(Contact).where(Contact.email_key == "vic@example.org")).one()
        cid = contact.id
        campaign = Campaign(name="Spring", subject="Hi", state="sent")
        s.add(campaign)
        s.flush()
        s.add(Delivery(campaign_id=campaign.id, contact_id=cid, status="sent"))
    assert client.delete(f"/api/v1/contacts/{cid}", headers=auth("editor")).status_code == 204
    assert client.get(f"/api/v1/contacts/{cid}", headers=auth("editor")).status_code == 404
    assert client.get("/api/v1/contacts?q=vic", headers=auth("editor")).json()["items"] == []
    with session_scope(settings) as s:
        c = s.get(Contact, cid)
        assert (c.email, c.first_name, c.last_name, c.postal_code, c.status) == (None, "", "", "", "erased")
        assert c.erased_at is not None
        assert all(sub.payload == {} for sub in s.scalars(select(FormSubmission)))
        events = list(s.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == cid)))
        assert events and all(e.client_ip is None and e.user_agent is None and e.detail == {} for e in events)
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.contact_id == cid)).first() is None
        assert all("vic@example.org" not in str(m.context) for m in s.scalars(select(OutboxMessage)))
        assert s.scalars(select(Volunteer)).first() is None
        assert s.scalars(select(Suppression.reason)).all() == ["erased"]
        assert s.scalars(select(Delivery.status)).all() == ["sent"]  # the campaign still counts them
        assert s.scalars(select(AuditEvent.action)).all() == ["contact.erase"]
    # The same address can neither come back through staff nor be found.
    r = client.post("/api/v1/contacts", json={"email": "vic@example.org"}, headers=auth("editor"))
    assert r.status_code == 409


def test_data_subject_export_holds_everything(client: Any, auth: Any, settings: Any) -> None:
    client.post("/api/v1/forms/donation-inquiry",
                json={"email": "di@example.org", "first_name": "Di", "last_name": "Ho", "inquiry_type": "one-time",
                      "message": "In memory of my father"})
    with session_scope(settings) as s:
        cid = s.scalars(select(Contact.id).where(Contact.email_key == "di@example.org")).one()
        vol = make_volunteer(s, email="di@example.org")
        assert vol.contact_id == cid
    r = client.get(f"/api/v1/contacts/{cid}/export", headers=auth("editor"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["contact"]["email"] == "di@example.org"
    assert data["donation_inquiries"][0]["message"] == "In memory of my father"
    assert data["form_submissions"][0]["form"] == "donation-inquiry"
    assert data["volunteer"]["areas"] == ["transport-to-treatment"]
    assert {"subscriptions", "consent_events", "deliveries"} <= set(data)
    with session_scope(settings) as s:
        assert s.scalars(select(AuditEvent.action)).all() == ["contact.export"]


ROUTES = [
    ("get", "/api/v1/contacts", "viewer"),
    ("post", "/api/v1/contacts", "editor"),
    ("get", "/api/v1/contacts/1", "viewer"),
    ("patch", "/api/v1/contacts/1", "editor"),
    ("delete", "/api/v1/contacts/1", "editor"),
    ("get", "/api/v1/contacts/1/export", "viewer"),
    ("get", "/api/v1/contacts/export.csv", "viewer"),
    ("post", "/api/v1/contacts/import", "editor"),
    ("get", "/api/v1/jobs/1", "viewer"),
    ("get", "/api/v1/templates", "viewer"),
    ("post", "/api/v1/templates", "editor"),
    ("get", "/api/v1/templates/campaign", "viewer"),
    ("put", "/api/v1/templates/campaign", "editor"),
    ("post", "/api/v1/templates/campaign/preview", "viewer"),
    ("get", "/api/v1/audit", "admin"),
]
WEAKER = {"viewer": None, "editor": "viewer", "admin": "editor"}


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_roles(client: Any, auth: Any, method: str, path: str, needs: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method in ("post", "put", "patch") else {}
    assert getattr(client, method)(path, **kwargs).status_code == 401
    assert getattr(client, method)(path, headers={"Authorization": "Bearer nope"}, **kwargs).status_code == 401
    if WEAKER[needs]:
        assert getattr(client, method)(path, headers=auth(WEAKER[needs]), **kwargs).status_code == 403
    assert getattr(client, method)(path, headers=auth(needs), **kwargs).status_code not in (401, 403, 500)


def test_health_attributes_stay_out_of_logs(client: Any, auth: Any, settings: Any, caplog: Any) -> None:
    import logging

    from crm.contacts import importer

    caplog.set_level(logging.DEBUG)
    c = _create(client, auth, role="patient", interests=["tobacco-cessation"])
    client.patch(f"/api/v1/contacts/{c['id']}", json={"role": "survivor", "interests": ["clinical-trials"]},
                 headers=auth("editor"))
    job = client.post("/api/v1/contacts/import", headers={**auth("editor"), "content-type": "text/csv"},
                      content=b"email,role,interests\nzed@example.org,caregiver,caregiving\n").json()["job_id"]
    with session_scope(settings) as s:
        importer.run(s, job)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("patient", "survivor", "caregiver", "tobacco-cessation", "clinical-trials", "caregiving"):
        assert secret not in logged


def test_audit_log_lists_who_did_what(client: Any, auth: Any, session: Any) -> None:
    a = make_contact(session, email="a@example.org")
    b = make_contact(session, email="b@example.org")
    session.commit()
    client.get(f"/api/v1/contacts/{a.id}/export", headers=auth("editor"))
    client.delete(f"/api/v1/contacts/{a.id}", headers=auth("editor"))
    client.delete(f"/api/v1/contacts/{b.id}", headers=auth("admin"))
    client.get("/api/v1/contacts/export.csv", headers=auth("admin")).read()
    everything = client.get("/api/v1/audit", headers=auth("admin")).json()["items"]
    assert [e["action"] for e in everything] == ["contacts.export_csv", "contact.erase", "contact.erase",
                                                "contact.export"]
    assert everything[0]["rows"] == 0 and everything[-1]["target"] == f"contact:{a.id}"
    first = client.get("/api/v1/audit?action=contact.erase&limit=1", headers=auth("admin")).json()
    assert first["items"][0]["staff_email"] == "admin@staff.example.org" and first["next_cursor"]
    second = client.get(f"/api/v1/audit?action=contact.erase&limit=1&cursor={first['next_cursor']}",
                        headers=auth("admin")).json()
    assert second["items"][0]["staff_email"] == "editor@staff.example.org" and second["next_cursor"] is None
    mine = client.get("/api/v1/audit?staff=editor@staff.example.org", headers=auth("admin")).json()["items"]
    assert {e["action"] for e in mine} == {"contact.export", "contact.erase"}
    assert client.get("/api/v1/audit?cursor=@@", headers=auth("admin")).status_code == 400
