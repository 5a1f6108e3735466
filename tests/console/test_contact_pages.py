"""The contacts pages over HTTP: filters and paging, the whole profile, edit, erase, exports, roles, audit."""

from __future__ import annotations

import csv
import io
import json
import re

from sqlalchemy import select

from crm.contacts.models import ConsentEvent, Contact
from crm.db import session_scope
from crm.staff.models import AuditEvent
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_contact


def _audit(settings, action: str) -> list[AuditEvent]:
    with session_scope(settings) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_filters_combine_and_paging_keeps_them(settings, client, session):
    make_member(settings, "val@staff.example.org", "viewer")
    for i in range(60):
        make_contact(session, email=f"care{i}@example.org", role="caregiver", interests=["caregiving"],
                     tags=["walk-2025"], lists={"newsletter": "confirmed"})
    make_contact(session, email="pat@example.org", role="patient", interests=["caregiving"])
    make_contact(session, email="unsub@example.org", role="caregiver", status="unsubscribed")
    session.commit()
    sign_in(client, "val@staff.example.org")
    first = client.get("/staff/contacts", params={"interest": "caregiving", "role": "caregiver", "tag": "walk-2025",
                                                  "list": "newsletter", "status": "active"})
    assert first.status_code == 200 and "pat@example.org" not in first.text and "unsub@example.org" not in first.text
    assert first.text.count("care") >= 50 and '<option value="caregiving" selected>' in first.text
    nxt = re.search(r'href="(/staff/contacts\?[^"]*after=[^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert "role=caregiver" in nxt and "list=newsletter" in nxt
    second = client.get(nxt)
    rows = re.findall(r"care(\d+)@example.org", first.text + second.text)
    assert sorted(set(rows), key=int) == [str(i) for i in range(60)]
    assert "First page" in second.text and "Next page" not in second.text
    assert "pat@example.org" in client.get("/staff/contacts", params={"q": "PAT@example.org"}).text
    assert client.get("/staff/contacts", params={"status": "nonsense", "after": "!!"}).status_code == 200


def test_the_profile_shows_every_part_with_labels_and_the_view_is_audited(settings, client, session):
    make_member(settings, "val@staff.example.org", "viewer")
    ann = make_contact(session, email="ann.profile@example.org", first_name="Ann", last_name="Lee", role="caregiver",
                       interests=["clinical-trials"], tags=["gala-2026"], lists={"newsletter": "confirmed"})
    session.add(ConsentEvent(contact_id=ann.id, action="signup", list="newsletter", source="newsletter",
                             source_url="https://charity.example.org/news", consent_version="2026-01"))
    session.commit()
    sign_in(client, "val@staff.example.org")
    page = client.get(f"/staff/contacts/{ann.id}")
    assert page.status_code == 200 and page.text.count("<h1") == 1 and "<h1>Ann Lee</h1>" in page.text
    for part in ("Details", "Subscriptions", "Interests", "Consent trail", "Emails sent", "Volunteering",
                 "Donation inquiries", "Form submissions"):
        assert f"<h2>{part}</h2>" in page.text, part
    assert "Caregiver" in page.text and "Clinical" in page.text and "Newsletter sign-up" in page.text
    assert "Signed up" in page.text and "gala-2026" in page.text
    assert "clinical-trials" not in page.text.split("<main", 1)[1]  # a label, never the raw key
    views = _audit(settings, "contact.view")
    assert [(v.staff_email, v.target) for v in views] == [("val@staff.example.org", f"contact:{ann.id}")]


def test_a_viewer_finds_no_write_control_and_a_forged_post_is_refused(settings, client, session):
    make_member(settings, "val@staff.example.org", "viewer")
    ann = make_contact(session, email="ann.viewer@example.org", first_name="Ann")
    session.commit()
    sign_in(client, "val@staff.example.org")
    page = client.get(f"/staff/contacts/{ann.id}")
    assert "Edit contact" not in page.text and "Erase contact" not in page.text
    main = page.text.split("<main", 1)[1]
    assert "<form method=\"post\"" not in main  # the only POST form a viewer sees is Sign out, in the header
    assert client.get(f"/staff/contacts/{ann.id}/edit").status_code == 403
    token = csrf_of(page.text)
    forged = client.post(f"/staff/contacts/{ann.id}/edit", data={"csrf_token": token, "first_name": "Mallory"})
    assert forged.status_code == 403
    erased = client.post(f"/staff/contacts/{ann.id}/erase", data={"csrf_token": token,
                                                                  "confirm_email": "ann.viewer@example.org"})
    assert erased.status_code == 403
    with session_scope(settings) as s:
        c = s.get(Contact, ann.id)
        assert c.first_name == "Ann" and c.status == "active"


def test_an_editor_edits_a_contact_and_a_bad_field_is_named_without_saving(settings, client, session):
    make_member(settings, "ed@staff.example.org", "editor")
    ann = make_contact(session, email="ann.edit@example.org", first_name="Ann", interests=["caregiving"])
    make_contact(session, email="taken@example.org")
    session.commit()
    sign_in(client, "ed@staff.example.org")
    form = client.get(f"/staff/contacts/{ann.id}/edit")
    assert form.status_code == 200 and 'value="ann.edit@example.org"' in form.text
    data = {"csrf_token": csrf_of(form.text), "email": "ann.edit@example.org", "first_name": "Annie",
            "last_name": "Lee", "phone": "", "postal_code": "30301", "language": "es", "role": "survivor",
            "tags": "gala-2026, press", "interests": ["clinical-trials", "caregiving"],
            "list:newsletter": "confirmed"}
    saved = client.post(f"/staff/contacts/{ann.id}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/staff/contacts/{ann.id}?saved=1"
    assert "Changes saved." in client.get(saved.headers["location"]).text
    with session_scope(settings) as s:
        c = s.get(Contact, ann.id)
        assert (c.first_name, c.language, c.role, c.postal_code) == ("Annie", "es", "survivor", "30301")
        staff_consent = s.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ann.id)).all()
        assert any(e.staff_email == "ed@staff.example.org" and e.action == "staff-confirm" for e in staff_consent)
    bad = client.post(f"/staff/contacts/{ann.id}/edit", data={**data, "email": "taken@example.org",
                                                              "first_name": "Changed"})
    assert bad.status_code == 409 and "another contact has this address" in bad.text
    assert 'value="Changed"' in bad.text  # what they typed is still there
    invalid = client.post(f"/staff/contacts/{ann.id}/edit", data={**data, "email": "not an address"})
    assert invalid.status_code == 400 and 'id="email-error"' in invalid.text
    with session_scope(settings) as s:
        assert s.get(Contact, ann.id).first_name == "Annie"


def test_erase_needs_the_address_typed_then_forgets_the_person(settings, client, session):
    make_member(settings, "ed@staff.example.org", "editor")
    ann = make_contact(session, email="ann.erase@example.org", first_name="Ann", lists={"newsletter": "confirmed"})
    session.commit()
    sign_in(client, "ed@staff.example.org")
    form = client.get(f"/staff/contacts/{ann.id}/erase")
    assert "Type the address to confirm" in form.text
    wrong = client.post(f"/staff/contacts/{ann.id}/erase", data={"csrf_token": csrf_of(form.text),
                                                                 "confirm_email": "someone@example.org"})
    assert wrong.status_code == 400 and "nothing was erased" in wrong.text
    done = client.post(f"/staff/contacts/{ann.id}/erase", data={"csrf_token": csrf_of(form.text),
                                                                "confirm_email": " ANN.erase@example.org "},
                       follow_redirects=False)
    assert done.status_code == 303
    assert 'role="status"' in client.get(done.headers["location"]).text
    with session_scope(settings) as s:
        c = s.get(Contact, ann.id)
        assert c.status == "erased" and c.email is None and c.first_name == ""
    assert client.get(f"/staff/contacts/{ann.id}").status_code == 404
    assert [e.target for e in _audit(settings, "contact.erase")] == [f"contact:{ann.id}"]


def test_data_subject_export_and_segment_csv_are_downloads_and_audited(settings, client, session):
    from crm.segments.models import Segment

    make_member(settings, "val@staff.example.org", "viewer")
    ann = make_contact(session, email="ann.export@example.org", first_name="=cmd()", tags=["gala-2026"])
    make_contact(session, email="other@example.org")
    seg = Segment(name="Gala guests", rules={"tag": "gala-2026"})
    session.add(seg)
    session.commit()
    sign_in(client, "val@staff.example.org")
    held = client.get(f"/staff/contacts/{ann.id}/export")
    assert held.status_code == 200 and "attachment" in held.headers["content-disposition"]
    assert json.loads(held.content)["contact"]["email"] == "ann.export@example.org"
    assert [e.target for e in _audit(settings, "contact.export")] == [f"contact:{ann.id}"]
    choose = client.get("/staff/contacts/export")
    assert "Segment: Gala guests" in choose.text
    got = client.get("/staff/contacts/export.csv", params={"segment_id": seg.id})
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["email"] for r in rows] == ["ann.export@example.org"] and rows[0]["first_name"] == "'=cmd()"
    exports = _audit(settings, "contacts.export_csv")
    assert exports[0].rows == 1 and exports[0].staff_email == "val@staff.example.org"
    assert client.get("/staff/contacts/export.csv", params={"segment_id": 999999}).status_code == 404
    assert client.get("/staff/contacts/export.csv", params={"segment_id": "abc"}).status_code == 400


def test_the_profile_flags_a_role_address_and_shows_the_persons_journeys(settings, client, session):
    from crm.journeys import examples
    from crm.journeys.models import Journey, JourneyEnrolment

    make_member(settings, "val@staff.example.org", "viewer")
    team = make_contact(session, email="info@example.org")
    ana = make_contact(session, email="ana.j@example.org")
    examples.load(session, settings)
    journey = session.scalars(select(Journey).order_by(Journey.id)).first()
    session.add(JourneyEnrolment(journey_id=journey.id, contact_id=ana.id, step=1))
    session.commit()
    sign_in(client, "val@staff.example.org")
    assert "a role address" in client.get(f"/staff/contacts/{team.id}").text
    page = client.get(f"/staff/contacts/{ana.id}").text
    assert "a role address" not in page and "Not in any journey" not in page
    assert journey.name in page and "In progress" in page and "1 of 3" in page
    assert "Not in any journey" in client.get(f"/staff/contacts/{team.id}").text
