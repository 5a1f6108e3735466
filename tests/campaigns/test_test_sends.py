"""Test sends (SPEC 5) over HTTP with the MemorySender: staff only, never suppressed, links that work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from crm.contacts import service as contacts
from crm.contacts.models import Subscription
from crm.db import session_scope
from crm.mail import MemorySender
from crm.staff.models import AuditEvent, Staff
from tests.factories import make_contact
from tests.helpers import html_of, link_path

BODY = {"name": "Spring appeal", "subject": "News for {{ contact.first_name }}", "list": "newsletter",
        "body_html": "<p>Hello {{ contact.first_name }}</p>"
                     "<p><a href=\"{{ links.preferences }}\">Your emails</a></p>"}
EDITOR = "editor@staff.example.org"


def campaign(client: Any, auth: Any) -> int:
    r = client.post("/api/v1/campaigns", headers=auth("editor"), json=BODY)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_only_active_staff_addresses_are_sent_to(client, auth, settings):
    cid = campaign(client, auth)
    with session_scope(settings) as s:
        make_contact(s, email="member@example.org", lists={"newsletter": "confirmed"})
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": [EDITOR, "member@example.org"]})
    assert r.status_code == 400
    assert r.json()["errors"]["emails"] == "member@example.org is not a staff address"
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"), json={"to": ["x@example.org"]})
    assert r.status_code == 400 and "x@example.org is not a staff address" in r.json()["errors"]["to"]
    assert MemorySender.outbox == []
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"), json={"emails": ["Editor@Staff.Example.org"]})
    assert r.status_code == 202, r.text
    [msg] = MemorySender.outbox
    assert str(msg["To"]).strip("<>").lower() == EDITOR and str(msg["Subject"]).startswith("[TEST] ")


def test_a_deactivated_or_suppressed_staff_address_is_refused(client, auth, settings):
    cid = campaign(client, auth)
    with session_scope(settings) as s:
        contacts.suppress(s, "viewer@staff.example.org", "complained")
        s.execute(update(Staff).where(Staff.email == "admin@staff.example.org").values(active=False))
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": ["viewer@staff.example.org"]})
    assert r.status_code == 400 and "viewer@staff.example.org is suppressed" in r.json()["errors"]["emails"]
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": ["admin@staff.example.org"]})
    assert r.status_code == 400 and "is not a staff address" in r.json()["errors"]["emails"]
    assert MemorySender.outbox == []


def test_sample_links_land_on_the_test_email_page_and_change_nothing(client, auth, settings):
    cid = campaign(client, auth)
    with session_scope(settings) as s:
        make_contact(s, email="member@example.org", lists={"newsletter": "confirmed"})
    assert client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                       json={"emails": [EDITOR]}).status_code == 202
    [msg] = MemorySender.outbox
    for kind in ("preferences", "unsubscribe"):
        path = link_path(msg, kind)
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "test email" in page.text and "does not work" not in page.text
    assert client.post(link_path(msg, "unsubscribe")).status_code == 200  # one-click: nobody to unsubscribe
    token = link_path(msg, "preferences").rsplit("/", 1)[1]
    r = client.get(f"/api/v1/preferences/{token}")
    assert r.status_code == 200 and r.json()["sample"] is True
    with session_scope(settings) as s:
        assert [x.state for x in s.scalars(select(Subscription))] == ["confirmed"]
        assert contacts.suppression_reason(s, "member@example.org") is None
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.test")).first() is None


def test_a_chosen_contact_gets_their_greeting_and_their_own_links_and_is_audited(client, auth, settings):
    cid = campaign(client, auth)
    with session_scope(settings) as s:
        contact_id = make_contact(s, email="rosa@example.org", first_name="Rosa",
                                  lists={"newsletter": "confirmed"}).id
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": [EDITOR], "contact_id": contact_id})
    assert r.status_code == 202, r.text
    [msg] = MemorySender.outbox
    assert "Hello Rosa" in html_of(msg) and "Rosa" in str(msg["Subject"])
    assert "rosa@example.org" not in str(msg["To"])
    page = client.get(link_path(msg, "preferences"))
    assert page.status_code == 200 and "rosa@example.org" in page.text  # Rosa's own preference centre
    with session_scope(settings) as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.test")).all()
        assert event.staff_email == EDITOR and event.target == f"contact:{contact_id}"
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": [EDITOR], "contact_id": 999999})
    assert r.status_code == 404 and "contact_id" in r.json()["errors"]
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": [EDITOR], "contact_id": "rosa"})
    assert r.status_code == 400 and "contact_id" in r.json()["errors"]


def test_a_sample_invitation_link_shows_the_test_email_page_and_records_nothing(client, settings):
    from crm.campaigns.invitations import respond_url
    from crm.links import SAMPLE_CONTACT_ID
    from crm.volunteers.models import OpportunityResponse

    path = "/" + respond_url(settings, SAMPLE_CONTACT_ID, 1).split("/", 3)[3]
    for r in (client.get(path), client.post(path)):
        assert r.status_code == 200 and "test email" in r.text
    with session_scope(settings) as s:
        assert s.scalars(select(OpportunityResponse)).first() is None
