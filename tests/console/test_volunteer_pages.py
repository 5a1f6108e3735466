"""The volunteer pages over HTTP: the pipeline, one volunteer's page and its forms, roles and CSRF."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from crm.db import session_scope
from crm.outbox.models import OutboxMessage
from crm.volunteers.models import Volunteer, VolunteerEvent, VolunteerHours, VolunteerQualification
from crm.volunteers.qualifications import create_type
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_volunteer
from tests.helpers import html_of, text_of, to, volunteer_body

EDITOR, VIEWER = "ed@staff.example.org", "vi@staff.example.org"


@pytest.fixture
def people(settings):
    make_member(settings, EDITOR, "editor")
    make_member(settings, VIEWER, "viewer")
    with session_scope(settings) as s:
        ann = make_volunteer(s, status="interested", first_name="Ann", last_name="Lee", email="ann@example.org",
                             areas=["events"], availability=["weekends"], postal_code="30301", language="es")
        bo = make_volunteer(s, status="active", first_name="Bo", last_name="Park", email="bo@example.org",
                            areas=["office"], availability=["weekday-daytime"], postal_code="90210")
        return {"ann": ann.id, "bo": bo.id}


def post(client, path: str, form: dict[str, str], page: str | None = None):
    """Post a console form the way the browser does: with the CSRF token of the page it sits on."""
    token = csrf_of(client.get(page or "/staff/volunteers").text)
    return client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)


def status_of(settings, volunteer_id: int) -> Volunteer:
    with session_scope(settings) as s:
        return s.get(Volunteer, volunteer_id)


def test_the_pipeline_lists_filters_and_counts_per_status(settings, client, people):
    sign_in(client, VIEWER)
    page = client.get("/staff/volunteers")
    assert page.status_code == 200 and page.text.count("<h1") == 1
    assert "Ann Lee" in page.text and "Bo Park" in page.text
    assert re.search(r'<span class="n">1</span> Interested', page.text)
    assert re.search(r'<span class="n">1</span> Active', page.text)
    assert "<td>Events</td>" in page.text and "<td>Office help</td>" in page.text  # labels, not keys
    only_es = client.get("/staff/volunteers?language=es")
    assert "Ann Lee" in only_es.text and "Bo Park" not in only_es.text
    near = client.get("/staff/volunteers?postal_code=902&availability=weekday-daytime")
    assert "Bo Park" in near.text and "Ann Lee" not in near.text
    active = client.get("/staff/volunteers?status=active")
    assert "Bo Park" in active.text and "Ann Lee" not in active.text
    # Counts keep to the other filters: with language=es, nobody is active.
    assert re.search(r'<span class="n">0</span> Active', only_es.text)
    never = client.get("/staff/volunteers?contacted=never")
    assert "Ann Lee" in never.text
    board = client.get("/staff/volunteers?view=board")
    columns = re.findall(r'<h2 id="col-(\w+)">', board.text)
    assert columns == ["interested", "contacted", "onboarding", "active", "paused", "inactive"]
    interested = board.text.split('id="col-interested"', 1)[1].split("</section>", 1)[0]
    assert "Ann Lee" in interested and "Bo Park" not in interested
    assert re.findall(r'<h2 id="col-(\w+)">', client.get("/staff/volunteers?view=board&status=active").text) == ["active"]
    junk = client.get("/staff/volunteers?status=bogus&area=nowhere&after=%%%&view=cards")
    assert junk.status_code == 200 and "Ann Lee" in junk.text


def test_a_viewer_reads_a_volunteer_but_gets_no_forms_and_a_forced_post_is_refused(settings, client, people):
    sign_in(client, VIEWER)
    page = client.get(f"/staff/volunteers/{people['ann']}")
    assert page.status_code == 200 and "<h1>Ann Lee" in page.text
    assert "Change status" not in page.text and "Add note" not in page.text
    token = csrf_of(page.text)
    forced = client.post(f"/staff/volunteers/{people['ann']}/status",
                         data={"csrf_token": token, "status": "contacted"}, follow_redirects=False)
    assert forced.status_code == 403 and "Not allowed" in forced.text
    assert status_of(settings, people["ann"]).status == "interested"


def test_signed_out_the_volunteer_page_goes_to_sign_in_and_back(settings, client, people):
    r = client.get(f"/staff/volunteers/{people['ann']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/staff/login?next=%2Fstaff%2Fvolunteers%2F{people['ann']}"
    done = sign_in(client, EDITOR, next_path=f"/staff/volunteers/{people['ann']}")
    assert done.headers["location"] == f"/staff/volunteers/{people['ann']}"


def test_moving_a_status_with_a_note_and_the_email(settings, client, people, sent):
    sign_in(client, EDITOR)
    vid = people["ann"]
    r = post(client, f"/staff/volunteers/{vid}/status", {"status": "contacted", "note": "called, keen on events"},
             page=f"/staff/volunteers/{vid}")
    assert r.status_code == 303 and r.headers["location"] == f"/staff/volunteers/{vid}?done=moved"
    r = post(client, f"/staff/volunteers/{vid}/status", {"status": "onboarding", "note": "training booked",
                                                         "send_email": "yes"}, page=f"/staff/volunteers/{vid}")
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert 'role="status">Status changed.' in page.text
    assert "Contacted → Onboarding" in page.text and "training booked" in page.text and EDITOR in page.text
    assert "status email sent" in page.text
    [mail] = to(sent(), "ann@example.org")
    assert mail["Subject"] == "Sus próximos pasos como voluntario"  # her language
    page = client.get(f"/staff/volunteers/{vid}")
    assert "Status update: Onboarding" in page.text  # listed under emails sent
    assert status_of(settings, vid).status == "onboarding"


def test_an_illegal_move_and_a_missing_token_change_nothing(settings, client, people):
    sign_in(client, EDITOR)
    vid = people["ann"]
    r = post(client, f"/staff/volunteers/{vid}/status", {"status": "active"}, page=f"/staff/volunteers/{vid}")
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert "New status: illegal move from &#39;interested&#39; to &#39;active&#39;" in r.text
    r = client.post(f"/staff/volunteers/{vid}/status", data={"status": "contacted"}, follow_redirects=False)
    assert r.status_code == 403
    r = post(client, f"/staff/volunteers/{vid}/status", {"status": "", "note": "x"}, page=f"/staff/volunteers/{vid}")
    assert r.status_code == 400 and "choose the new status" in r.text
    assert status_of(settings, vid).status == "interested"
    with session_scope(settings) as s:
        assert s.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vid)).all()[-1].actor == "form"


def test_pausing_with_a_date_and_a_note(settings, client, people):
    sign_in(client, EDITOR)
    vid = people["bo"]
    until = dt.date.today() + dt.timedelta(days=30)
    r = post(client, f"/staff/volunteers/{vid}/pause", {"paused_until": until.isoformat(), "note": "surgery"},
             page=f"/staff/volunteers/{vid}")
    assert r.status_code == 303
    vol = status_of(settings, vid)
    assert vol.status == "paused" and vol.paused_until == until
    page = client.get(f"/staff/volunteers/{vid}")
    assert "Active → Paused" in page.text and "surgery" in page.text
    assert f"paused until {until:%a} {until.day} {until:%b %Y}" in page.text
    past = post(client, f"/staff/volunteers/{vid}/pause", {"paused_until": "2020-01-01"}, page=f"/staff/volunteers/{vid}")
    assert past.status_code == 400 and "Pause until: must be today or later" in past.text
    bad = post(client, f"/staff/volunteers/{vid}/pause", {"paused_until": "soon"}, page=f"/staff/volunteers/{vid}")
    assert bad.status_code == 400 and "Pause until: must be a date" in bad.text


def test_notes_qualifications_with_their_expiry_state_and_hours(settings, client, people):
    with session_scope(settings) as s:
        create_type(s, {"key": "drivers-licence", "label": "Driver's licence", "valid_days": 365})
        create_type(s, {"key": "background-check", "label": "Background check"})
    sign_in(client, EDITOR)
    here = f"/staff/volunteers/{people['bo']}"
    assert post(client, f"{here}/notes", {"note": "prefers mornings"}, page=here).status_code == 303
    today = dt.date.today()
    assert post(client, f"{here}/qualifications", {"type": "drivers-licence",
                "obtained_on": (today - dt.timedelta(days=355)).isoformat()}, page=here).status_code == 303
    assert post(client, f"{here}/qualifications", {"type": "background-check", "obtained_on": "2020-01-01",
                "expires_on": "2021-01-01"}, page=here).status_code == 303
    page = client.get(here)
    assert "prefers mornings" in page.text
    assert "Expires in 10 days" in page.text and "Expired on Fri 1 Jan 2021" in page.text
    assert "q-expiring" in page.text and "q-expired" in page.text
    wrong = post(client, f"{here}/qualifications", {"type": "drivers-licence", "obtained_on": "yesterday"}, page=here)
    assert wrong.status_code == 400 and "Obtained on: must be a date" in wrong.text
    assert post(client, f"{here}/hours", {"date": today.isoformat(), "hours": "2.5", "note": "mail-out"},
                page=here).status_code == 303
    page = client.get(here)
    assert "Approved in total: <strong>2.5</strong>" in page.text and "mail-out" in page.text
    assert post(client, f"{here}/hours", {"date": today.isoformat(), "hours": "99"}, page=here).status_code == 400
    with session_scope(settings) as s:
        qid = s.scalars(select(VolunteerQualification.id).where(VolunteerQualification.type_key == "background-check")).one()
        assert len(s.scalars(select(VolunteerHours)).all()) == 1
    assert post(client, f"{here}/qualifications/{qid}/remove", {}, page=here).status_code == 303
    assert "Expired on Fri 1 Jan 2021" not in client.get(here).text


def test_an_unknown_volunteer_is_a_not_found_page(settings, client, people):
    sign_in(client, VIEWER)
    r = client.get("/staff/volunteers/999999")
    assert r.status_code == 404 and "<h1>Not found</h1>" in r.text


def test_the_new_volunteer_notice_links_to_the_volunteer_page(settings, client, people, sent):
    assert client.post("/api/v1/forms/volunteer-interest", json=volunteer_body()).status_code == 202
    [notice] = to(sent(), settings.notify_volunteers)
    with session_scope(settings) as s:
        vid = s.scalars(select(Volunteer.id).order_by(Volunteer.id.desc())).first()
        assert s.scalars(select(OutboxMessage.template).where(OutboxMessage.to_address == settings.notify_volunteers)).all()
    link = f"{settings.public_base_url}/staff/volunteers/{vid}"
    assert link in text_of(notice) and f'href="{link}"' in html_of(notice)
    path = link.removeprefix(settings.public_base_url)
    r = client.get(path, follow_redirects=False)
    assert r.headers["location"] == f"/staff/login?next=%2Fstaff%2Fvolunteers%2F{vid}"
    assert sign_in(client, EDITOR, next_path=path).headers["location"] == path
    assert "<h1>Vic Ray" in client.get(path).text
