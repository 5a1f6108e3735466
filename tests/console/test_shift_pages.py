"""Opportunities, matches, notify, shifts, sign-ups, attendance and the hours queue in the console over HTTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from crm.db import session_scope
from crm.volunteers.models import Opportunity, Shift, ShiftSignup, VolunteerHours
from crm.volunteers.qualifications import create_type
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_volunteer
from tests.helpers import to

EDITOR, VIEWER = "ed@staff.example.org", "vi@staff.example.org"
OPP_FORM = {"title": "Gala helpers", "area": "events", "description": "Greet guests", "postal_code": "30301",
            "needed": "2", "schedule": "Saturday evening", "availability": "", "starts_on": "", "ends_on": ""}


def post(client, path: str, form: dict[str, str]):
    token = csrf_of(client.get("/staff/volunteers").text)
    return client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)


def local(days: int, hour: int) -> str:
    return dt.datetime.combine(dt.date.today() + dt.timedelta(days=days), dt.time(hour)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def team(settings):
    make_member(settings, EDITOR, "editor")
    make_member(settings, VIEWER, "viewer")
    with session_scope(settings) as s:
        ids = {name: make_volunteer(s, first_name=name, last_name="Helper", email=f"{name.lower()}@example.org",
                                    areas=["events"], postal_code=code).id
               for name, code in (("Ann", "30309"), ("Bo", "30312"), ("Cy", "90210"))}
    return ids


def make_opportunity(client, **overrides: str) -> int:
    r = post(client, "/staff/volunteers/opportunities", {**OPP_FORM, **overrides})
    assert r.status_code == 303, r.text
    return int(re.search(r"/opportunities/(\d+)\?done=created", r.headers["location"]).group(1))


def add_shift(client, opp: int, capacity: int = 1, days: int = 3) -> int:
    r = post(client, f"/staff/volunteers/opportunities/{opp}/shifts",
             {"starts_at": local(days, 18), "ends_at": local(days, 21), "capacity": str(capacity), "location": "Hall"})
    assert r.status_code == 303, r.text
    return max(s.id for s in _shifts(client.app.state.settings, opp))


def _shifts(settings, opp: int) -> list[Shift]:
    with session_scope(settings) as s:
        return list(s.scalars(select(Shift).where(Shift.opportunity_id == opp)))


def test_create_and_edit_an_opportunity_and_refusals_name_the_field(settings, client, team):
    with session_scope(settings) as s:
        create_type(s, {"key": "background-check", "label": "Background check"})
    sign_in(client, EDITOR)
    assert client.get("/staff/volunteers/opportunities/new").status_code == 200
    bad = post(client, "/staff/volunteers/opportunities", {**OPP_FORM, "title": "", "needed": "many"})
    assert bad.status_code == 400 and "Volunteers needed: must be a whole number" in bad.text
    bad = post(client, "/staff/volunteers/opportunities", {**OPP_FORM, "title": "", "starts_on": "2026-05-02",
                                                           "ends_on": "2026-05-01"})
    assert bad.status_code == 400 and "Title: is required" in bad.text and "Ends on: must not be before" in bad.text
    assert 'value="Greet guests"' not in bad.text and ">Greet guests</textarea>" in bad.text  # what they typed stays
    opp = make_opportunity(client, **{"requires_background-check": "yes"})
    page = client.get(f"/staff/volunteers/opportunities/{opp}?done=created")
    assert "<h1>Gala helpers</h1>" in page.text and "Opportunity created." in page.text and "Background check" in page.text
    form = client.get(f"/staff/volunteers/opportunities/{opp}/edit")
    assert 'value="Gala helpers"' in form.text and 'id="req-background-check" name="requires_background-check" value="yes" checked' in form.text
    r = post(client, f"/staff/volunteers/opportunities/{opp}", {**OPP_FORM, "title": "Gala greeters"})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=saved")
    with session_scope(settings) as s:
        saved = s.get(Opportunity, opp)
        assert saved.title == "Gala greeters" and saved.requires == [] and saved.needed == 2
    listing = client.get("/staff/volunteers/opportunities")
    assert "Gala greeters" in listing.text


def test_matches_say_why_and_notify_names_how_many_first(settings, client, team, sent):
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    page = client.get(f"/staff/volunteers/opportunities/{opp}")
    assert "Matches (2)" in page.text and "Ann Helper" in page.text and "Bo Helper" in page.text
    assert "Cy Helper" not in page.text  # 90210 is not near 30301
    assert "Postal code 30309 starts with 303, like 30301" in page.text and "Area: Events" in page.text
    confirm = client.get(f"/staff/volunteers/opportunities/{opp}/notify")
    assert "to <strong>2 volunteers</strong>" in confirm.text and ">Email 2 volunteers<" in confirm.text
    r = post(client, f"/staff/volunteers/opportunities/{opp}/notify", {})
    assert r.status_code == 303 and r.headers["location"].endswith("?invited=2")
    assert "2 invitations queued" in client.get(r.headers["location"]).text
    again = client.get(f"/staff/volunteers/opportunities/{opp}/notify")
    assert "Nobody new to invite" in again.text and "<button" not in again.text.split("<main", 1)[1]


def test_a_viewer_sees_no_forms_and_forced_writes_are_refused(settings, client, team):
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    shift = add_shift(client, opp)
    post(client, f"/staff/volunteers/shifts/{shift}/signups", {"volunteer_id": str(team["Bo"])})
    with session_scope(settings) as s:
        s.add(VolunteerHours(volunteer_id=team["Ann"], date=dt.date.today(), hours=2, logged_by="self"))
    client.cookies.clear()
    sign_in(client, VIEWER)
    for path in (f"/staff/volunteers/opportunities/{opp}", f"/staff/volunteers/shifts/{shift}", "/staff/volunteers/hours",
                 "/staff/volunteers/opportunities", "/staff/volunteers/shifts"):
        page = client.get(path)
        assert page.status_code == 200 and page.text.count("<h1") == 1, path
        main = page.text.split("<main", 1)[1]
        assert 'method="post"' not in main and "Notify matches" not in main, path
        assert not any(b in main for b in (">Sign up<", "Cancel sign-up", "Approve chosen", "Add shift")), path
    assert client.get("/staff/volunteers/opportunities/new").status_code == 403
    assert client.get(f"/staff/volunteers/opportunities/{opp}/notify").status_code == 403
    for path, form in ((f"/staff/volunteers/opportunities/{opp}/notify", {}),
                       ("/staff/volunteers/opportunities", OPP_FORM),
                       (f"/staff/volunteers/shifts/{shift}/signups", {"volunteer_id": str(team["Ann"])}),
                       ("/staff/volunteers/hours", {"hours_1": "yes"})):
        assert post(client, path, form).status_code == 403, path
    assert _signups(settings, shift) == [("Bo", "confirmed", None)]
    assert "Ann Helper" in client.get("/staff/volunteers/hours").text  # viewers read the queue


def _signups(settings, shift: int) -> list[tuple[str, str, int | None]]:
    with session_scope(settings) as s:
        from crm.contacts.models import Contact
        from crm.volunteers.models import Volunteer
        return [(c.first_name, su.status, su.position) for su, c in s.execute(
            select(ShiftSignup, Contact).join(Volunteer, Volunteer.id == ShiftSignup.volunteer_id)
            .join(Contact, Contact.id == Volunteer.contact_id).where(ShiftSignup.shift_id == shift)
            .order_by(ShiftSignup.id)).tuples()]


def test_signing_two_up_for_one_place_waitlists_the_second(settings, client, team):
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    shift = add_shift(client, opp, capacity=1)
    page = client.get(f"/staff/volunteers/shifts/{shift}")
    assert f'<option value="{team["Ann"]}">Ann Helper (ann@example.org)</option>' in page.text
    first = post(client, f"/staff/volunteers/shifts/{shift}/signups", {"volunteer_id": str(team["Ann"])})
    assert first.headers["location"].endswith("?done=signed-up")
    second = post(client, f"/staff/volunteers/shifts/{shift}/signups", {"email": "BO@example.org"})
    assert second.headers["location"].endswith("?done=waitlisted")
    page = client.get(second.headers["location"])
    assert "The shift is full: put on the waitlist." in page.text and "Waitlisted, number 1 in line" in page.text
    assert _signups(settings, shift) == [("Ann", "confirmed", None), ("Bo", "waitlisted", 1)]
    week = client.get(f"/staff/volunteers/shifts?week={local(3, 0)[:10]}")
    assert "1 of 1 places taken" in week.text and "1 waiting" in week.text and "Gala helpers" in week.text
    nobody = post(client, f"/staff/volunteers/shifts/{shift}/signups", {"email": "nobody@example.org"})
    assert nobody.status_code == 400 and "Email address: no volunteer has the address nobody@example.org" in nobody.text
    cancel_id = _signup_id(settings, shift, "confirmed")
    r = post(client, f"/staff/volunteers/signups/{cancel_id}", {"outcome": "cancelled"})
    assert r.headers["location"].endswith("?done=cancelled")
    assert _signups(settings, shift) == [("Ann", "cancelled", None), ("Bo", "offered", 1)]


def _signup_id(settings, shift: int, status: str) -> int:
    with session_scope(settings) as s:
        return s.scalars(select(ShiftSignup.id).where(ShiftSignup.shift_id == shift, ShiftSignup.status == status)).first()


def test_clash_and_missing_qualification_refusals_are_plain(settings, client, team):
    with session_scope(settings) as s:
        create_type(s, {"key": "drivers-licence", "label": "Driver's licence"})
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    early = add_shift(client, opp, capacity=3)
    r = post(client, f"/staff/volunteers/opportunities/{opp}/shifts",
             {"starts_at": local(3, 20), "ends_at": local(3, 22), "capacity": "3"})
    assert r.status_code == 303
    overlapping = max(s.id for s in _shifts(settings, opp))
    assert post(client, f"/staff/volunteers/shifts/{early}/signups", {"volunteer_id": str(team["Ann"])}).status_code == 303
    clash = post(client, f"/staff/volunteers/shifts/{overlapping}/signups", {"volunteer_id": str(team["Ann"])})
    assert clash.status_code == 409 and 'role="alert"' in clash.text
    assert "Ann Helper is not signed up: they are already confirmed on “Gala helpers”" in clash.text
    assert f"(shift {early}), which overlaps this shift." in clash.text
    driving = make_opportunity(client, title="Drive to treatment", area="events", **{"requires_drivers-licence": "yes"})
    ride = add_shift(client, driving, days=5)
    refused = post(client, f"/staff/volunteers/shifts/{ride}/signups", {"volunteer_id": str(team["Bo"])})
    assert refused.status_code == 409
    assert "requires qualifications they do not hold on the shift&#39;s date: Driver&#39;s licence: missing." in refused.text
    assert _signups(settings, ride) == [] and _signups(settings, overlapping) == []


def test_attendance_after_the_shift_and_the_hours_queue_with_bulk_approval(settings, client, team):
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    shift = add_shift(client, opp, capacity=2)
    for name in ("Ann", "Bo"):
        post(client, f"/staff/volunteers/shifts/{shift}/signups", {"volunteer_id": str(team[name])})
    assert ">Attended<" not in client.get(f"/staff/volunteers/shifts/{shift}").text  # not before it happened
    with session_scope(settings) as s:  # the shift is now over
        s.execute(update(Shift).where(Shift.id == shift).values(
            starts_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), ends_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    page = client.get(f"/staff/volunteers/shifts/{shift}")
    assert "Hours worked by Ann Helper" in page.text and "Sign a volunteer up" not in page.text
    ann, bo = (_signup_of(settings, shift, team[n]) for n in ("Ann", "Bo"))
    assert post(client, f"/staff/volunteers/signups/{ann}", {"outcome": "completed", "hours": "2.5"}).status_code == 303
    assert post(client, f"/staff/volunteers/signups/{bo}", {"outcome": "no_show"}).status_code == 303
    bad = post(client, f"/staff/volunteers/signups/{bo}", {"outcome": "completed", "hours": "lots"})
    assert bad.status_code == 400 and "Hours: must be a number of hours" in bad.text
    assert _signups(settings, shift) == [("Ann", "completed", None), ("Bo", "no_show", None)]
    assert "Attended" in client.get(f"/staff/volunteers/shifts/{shift}").text

    with session_scope(settings) as s:  # hours the volunteers logged themselves: pending
        for vid, h in ((team["Ann"], 1.5), (team["Bo"], 3.0), (team["Cy"], 4.0)):
            s.add(VolunteerHours(volunteer_id=vid, date=dt.date.today(), hours=h, logged_by="self", status="pending"))
    queue = client.get("/staff/volunteers/hours")
    ids = [int(i) for i in re.findall(r'name="hours_(\d+)"', queue.text)]
    assert len(ids) == 3 and "Cy Helper" in queue.text
    empty = post(client, "/staff/volunteers/hours", {"verdict": "approved"})
    assert empty.status_code == 400 and "choose at least one" in empty.text
    r = post(client, "/staff/volunteers/hours", {f"hours_{ids[0]}": "yes", f"hours_{ids[1]}": "yes", "verdict": "approved"})
    assert r.status_code == 303
    done = client.get(r.headers["location"])
    assert "2 hours records approved." in done.text and len(re.findall(r'name="hours_(\d+)"', done.text)) == 1
    # The same submit again (a double click) changes nothing more.
    again = post(client, "/staff/volunteers/hours", {f"hours_{ids[0]}": "yes", "verdict": "approved"})
    assert "0 hours records approved." in client.get(again.headers["location"]).text
    with session_scope(settings) as s:
        states = sorted((h.hours, h.status, h.reviewed_by) for h in s.scalars(select(VolunteerHours)))
    assert states == [(1.5, "approved", EDITOR), (2.5, "approved", EDITOR), (3.0, "approved", EDITOR),
                      (4.0, "pending", None)]


def _signup_of(settings, shift: int, volunteer_id: int) -> int:
    with session_scope(settings) as s:
        return s.scalars(select(ShiftSignup.id).where(ShiftSignup.shift_id == shift,
                                                      ShiftSignup.volunteer_id == volunteer_id)).one()


def test_the_calendar_pages_by_week_and_survives_a_bad_week(settings, client, team):
    sign_in(client, VIEWER)
    page = client.get("/staff/volunteers/shifts?week=not-a-date")
    assert page.status_code == 200 and "Previous week" in page.text and "Next week" in page.text
    assert client.get("/staff/volunteers/shifts?opportunity=99999").status_code == 404
    assert client.get("/staff/volunteers/shifts/99999").status_code == 404


def test_a_cancelled_shift_emails_nobody_from_here_and_offers_no_signup(settings, client, team, sent):
    sign_in(client, EDITOR)
    opp = make_opportunity(client)
    shift = add_shift(client, opp)
    with session_scope(settings) as s:
        s.execute(update(Shift).where(Shift.id == shift).values(status="cancelled"))
    page = client.get(f"/staff/volunteers/shifts/{shift}")
    assert "Cancelled" in page.text and "Sign a volunteer up" not in page.text
    refused = post(client, f"/staff/volunteers/shifts/{shift}/signups", {"volunteer_id": str(team["Ann"])})
    assert refused.status_code == 409 and "is cancelled" in refused.text
    assert to(sent(), "ann@example.org") == []
