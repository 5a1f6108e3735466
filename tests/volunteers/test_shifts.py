"""Shifts, sign-ups, waitlist offers, qualifications, reminders and hours over the staff API (SPEC 11)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from crm.config import Settings
from crm.db import session_scope
from crm.links import token_for
from crm.mail import MemorySender
from crm.volunteers import signups, sweeps
from tests.factories import make_volunteer
from tests.helpers import html_of, links_in, text_of, to

OPP = {"title": "Road To Recovery driver", "area": "transport-to-treatment", "postal_code": "30301"}
ROUTES = [
    ("GET", "/api/v1/volunteers/opportunities/1/shifts", "viewer"),
    ("POST", "/api/v1/volunteers/opportunities/1/shifts", "editor"),
    ("GET", "/api/v1/volunteers/shifts/1", "viewer"),
    ("PATCH", "/api/v1/volunteers/shifts/1", "editor"),
    ("DELETE", "/api/v1/volunteers/shifts/1", "editor"),
    ("POST", "/api/v1/volunteers/shifts/1/signups", "editor"),
    ("PATCH", "/api/v1/volunteers/signups/1", "editor"),
    ("GET", "/api/v1/volunteers/qualification-types", "viewer"),
    ("POST", "/api/v1/volunteers/qualification-types", "editor"),
    ("GET", "/api/v1/volunteers/1/qualifications", "viewer"),
    ("POST", "/api/v1/volunteers/1/qualifications", "editor"),
    ("DELETE", "/api/v1/volunteers/1/qualifications/1", "editor"),
    ("GET", "/api/v1/volunteers/hours", "viewer"),
    ("POST", "/api/v1/volunteers/1/hours", "editor"),
    ("PATCH", "/api/v1/volunteers/hours/1", "editor"),
]


def future(days: int = 3, hour: int = 9) -> dt.datetime:
    day = dt.date.today() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour))


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def opp(client, auth):
    r = client.post("/api/v1/volunteers/opportunities", headers=auth("editor"), json=OPP)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def link_path(msg, pattern: str) -> str:
    """The path of the first link in the plain-text part whose path matches `pattern`."""
    for link in links_in(msg):
        m = re.search(pattern, link)
        if m:
            return m.group(0)
    raise AssertionError(f"no {pattern} link in:\n{text_of(msg)}")


def make_shift(client, auth, opp_id, *, days=3, hour=9, hours=2, capacity=2, **extra):
    start = future(days, hour)
    body = {"starts_at": iso(start), "ends_at": iso(start + dt.timedelta(hours=hours)), "capacity": capacity,
            "location": "Hope Lodge", **extra}
    r = client.post(f"/api/v1/volunteers/opportunities/{opp_id}/shifts", headers=auth("editor"), json=body)
    assert r.status_code == 201, r.text
    return r.json()["items"][0]


_made = {"n": 0}


def volunteers(settings: Settings, n: int, **kw) -> list[int]:
    """n volunteers, v0@example.org, v1@... numbered across the test."""
    out = []
    with session_scope(settings) as s:
        for _ in range(n):
            i = _made["n"]
            _made["n"] += 1
            out.append(make_volunteer(s, email=f"v{i}@example.org", first_name=f"V{i}", **kw).id)
    return out


@pytest.fixture(autouse=True)
def _numbering():
    _made["n"] = 0


@pytest.fixture
def mail(sent):
    """mail() -> the messages sent since the last call."""
    def fresh():
        got = sent()
        MemorySender.outbox.clear()
        return got
    return fresh


def sign(client, auth, shift_id, volunteer_id):
    return client.post(f"/api/v1/volunteers/shifts/{shift_id}/signups", headers=auth("editor"),
                       json={"volunteer_id": volunteer_id})


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_role_checks(client, auth, method, path, needs):
    kwargs = {"json": {}} if method in ("POST", "PATCH") else {}
    assert client.request(method, path, **kwargs).status_code == 401
    if needs == "editor":
        assert client.request(method, path, headers=auth("viewer"), **kwargs).status_code == 403
    assert client.request(method, path, headers=auth(needs), **kwargs).status_code not in (401, 403, 500)


def test_bad_shift_bodies_name_each_field(client, auth, opp):
    url = f"/api/v1/volunteers/opportunities/{opp}/shifts"
    r = client.post(url, headers=auth("editor"), json={"starts_at": "tomorrow", "capacity": 0, "colour": "red"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) >= {"starts_at", "ends_at", "capacity", "colour"}
    r = client.post(url, headers=auth("editor"), json={"starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T09:00",
                                                       "capacity": 1})
    assert r.status_code == 400 and "ends_at" in r.json()["errors"]
    r = client.post(url, headers=auth("editor"), json={"starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T10:00",
                                                       "capacity": 1, "repeat": {"weekdays": [7], "until": "x"}})
    assert r.status_code == 400 and {"repeat.weekdays", "repeat.until"} <= set(r.json()["errors"])
    assert client.post("/api/v1/volunteers/opportunities/999/shifts", headers=auth("editor"),
                       json={"starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T10:00",
                             "capacity": 1}).status_code == 404


def test_repeating_shifts_keep_local_time_across_dst(client, auth, opp, settings):
    settings.timezone = "America/New_York"
    # Mondays and Wednesdays every other week, across the November 2030 change back to standard time.
    r = client.post(f"/api/v1/volunteers/opportunities/{opp}/shifts", headers=auth("editor"), json={
        "starts_at": "2030-10-21T09:00", "ends_at": "2030-10-21T11:30", "capacity": 3,
        "repeat": {"weekdays": [0, 2], "every_weeks": 2, "until": "2030-11-20"}})
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    days = [i["starts_at"][:10] for i in items]
    assert days == ["2030-10-21", "2030-10-23", "2030-11-04", "2030-11-06", "2030-11-18", "2030-11-20"]
    assert {i["starts_at"][11:16] for i in items} == {"09:00"}
    assert {i["ends_at"][11:16] for i in items} == {"11:30"}
    assert items[0]["starts_at_utc"].startswith("2030-10-21T13:00")  # EDT, UTC-4
    assert items[-1]["starts_at_utc"].startswith("2030-11-20T14:00")  # EST, UTC-5
    listed = client.get(f"/api/v1/volunteers/opportunities/{opp}/shifts", headers=auth("viewer")).json()["items"]
    assert [i["id"] for i in listed] == [i["id"] for i in items]


def test_capacity_then_waitlist_in_order(client, auth, opp, settings):
    shift = make_shift(client, auth, opp, capacity=2)
    ids = volunteers(settings, 4)
    answers = [sign(client, auth, shift["id"], v) for v in ids]
    assert [a.status_code for a in answers] == [201] * 4
    assert [a.json()["status"] for a in answers] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [a.json()["position"] for a in answers[2:]] == [1, 2]
    got = client.get(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("viewer")).json()
    assert (got["signed_up"], got["waitlisted"], got["remaining"]) == (2, 2, 0)
    again = sign(client, auth, shift["id"], ids[0])  # the same sign-up, not a second place
    assert again.json()["id"] == answers[0].json()["id"]


def test_overlap_is_refused_naming_the_other_shift(client, auth, opp, settings):
    first = make_shift(client, auth, opp, hour=9, hours=2)
    second = make_shift(client, auth, opp, hour=10, hours=2)
    apart = make_shift(client, auth, opp, hour=11, hours=1)  # starts as the first ends: no overlap
    [vid] = volunteers(settings, 1)
    assert sign(client, auth, first["id"], vid).status_code == 201
    r = sign(client, auth, second["id"], vid)
    assert r.status_code == 409
    assert str(first["id"]) in r.json()["detail"] and r.json()["errors"]["shift_id"] == str(first["id"])
    assert sign(client, auth, apart["id"], vid).json()["status"] == "confirmed"


def test_paused_and_inactive_volunteers_cannot_sign_up(client, auth, opp, settings):
    shift = make_shift(client, auth, opp)
    with session_scope(settings) as s:
        paused = make_volunteer(s, email="p@example.org", paused_until=dt.date.today()).id
        ended = make_volunteer(s, email="p2@example.org", paused_until=dt.date.today() - dt.timedelta(days=1)).id
        inactive = make_volunteer(s, email="i@example.org", status="inactive").id
    r = sign(client, auth, shift["id"], paused)
    assert r.status_code == 409 and "paused" in r.json()["detail"]
    assert sign(client, auth, shift["id"], inactive).status_code == 409
    assert sign(client, auth, shift["id"], ended).status_code == 201  # a pause that ended yesterday is over
    assert sign(client, auth, shift["id"], "x").status_code == 400
    assert sign(client, auth, shift["id"], 99999).status_code == 404


def test_qualifications_required_and_valid_on_the_shift_date(client, auth, settings):
    h = auth("editor")
    for key, days in (("drivers-licence", None), ("background-check", 365)):
        body = {"key": key, "label": key.replace("-", " ").title(), "valid_days": days}
        assert client.post("/api/v1/volunteers/qualification-types", headers=h, json=body).status_code == 201
    assert client.post("/api/v1/volunteers/qualification-types", headers=h,
                       json={"key": "drivers-licence", "label": "x"}).status_code == 409
    assert client.post("/api/v1/volunteers/qualification-types", headers=h,
                       json={"key": "Bad Key", "label": ""}).json()["errors"].keys() >= {"key", "label"}
    bad = client.post("/api/v1/volunteers/opportunities", headers=h, json={**OPP, "requires": ["nope"]})
    assert bad.status_code == 400 and "requires" in bad.json()["errors"]
    opp = client.post("/api/v1/volunteers/opportunities", headers=h,
                      json={**OPP, "requires": ["drivers-licence", "background-check"]}).json()
    assert opp["requires"] == ["drivers-licence", "background-check"]
    shift = make_shift(client, auth, opp["id"], days=20)
    [vid] = volunteers(settings, 1)
    r = sign(client, auth, shift["id"], vid)
    assert r.status_code == 409
    assert r.json()["errors"] == {"drivers-licence": "missing", "background-check": "missing"}
    today = dt.date.today()
    q = client.post(f"/api/v1/volunteers/{vid}/qualifications", headers=h, json={
        "type": "background-check", "obtained_on": (today - dt.timedelta(days=350)).isoformat()}).json()
    assert q["expires_on"] == (today + dt.timedelta(days=15)).isoformat()  # from valid_days
    assert q["verified_by"] == "editor@staff.example.org"
    client.post(f"/api/v1/volunteers/{vid}/qualifications", headers=h,
                json={"type": "drivers-licence", "obtained_on": "2020-01-01", "note": "seen at the office"})
    r = sign(client, auth, shift["id"], vid)
    assert r.status_code == 409  # the check expires before the shift's date
    assert r.json()["errors"] == {"background-check": f"expired on {(today + dt.timedelta(days=15)).isoformat()}"}
    client.delete(f"/api/v1/volunteers/{vid}/qualifications/{q['id']}", headers=h)
    client.post(f"/api/v1/volunteers/{vid}/qualifications", headers=h,
                json={"type": "background-check", "obtained_on": today.isoformat()})
    assert sign(client, auth, shift["id"], vid).json()["status"] == "confirmed"
    listed = client.get(f"/api/v1/volunteers/{vid}/qualifications", headers=auth("viewer")).json()["items"]
    assert sorted(x["type"] for x in listed) == ["background-check", "drivers-licence"]


def test_qualification_expiry_warned_once(client, auth, settings, mail):
    h = auth("editor")
    client.post("/api/v1/volunteers/qualification-types", headers=h, json={"key": "auto-insurance", "label": "Auto insurance"})
    [vid] = volunteers(settings, 1)
    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    client.post(f"/api/v1/volunteers/{vid}/qualifications", headers=h,
                json={"type": "auto-insurance", "obtained_on": "2025-01-01", "expires_on": soon})
    listed = client.get("/api/v1/volunteers/qualifications/expiring", headers=auth("viewer")).json()["items"]
    assert [x["expires_on"] for x in listed] == [soon]
    for _ in range(2):
        with session_scope(settings) as s:
            sweeps.qualification_warnings(s, settings)
    mails = to(mail(), "v0@example.org")
    shown = dt.date.fromisoformat(soon).strftime("%B %-d, %Y")  # as Babel writes it in English
    assert [m["Subject"] for m in mails] == [f"Your Auto insurance expires on {shown}"]


def test_cancellation_offers_the_place_then_passes_it_on(client, auth, opp, settings, mail):
    shift = make_shift(client, auth, opp, capacity=1, days=4)
    a, b, c = volunteers(settings, 3)
    first = sign(client, auth, shift["id"], a).json()
    second = sign(client, auth, shift["id"], b).json()
    third = sign(client, auth, shift["id"], c).json()
    r = client.patch(f"/api/v1/volunteers/signups/{first['id']}", headers=auth("editor"), json={"status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    got = client.get(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("viewer")).json()
    assert (got["signed_up"], got["offered"], got["remaining"]) == (0, 1, 0)  # the place is held
    # Someone new cannot take the held place.
    [d] = volunteers(settings, 1, status="active", postal_code="30302")
    assert sign(client, auth, shift["id"], d).json()["status"] == "waitlisted"
    [offer] = to(mail(), "v1@example.org")
    accept = link_path(offer, r"/volunteer/[^/]+/offers/\d+")
    # The GET shows the offer and changes nothing.
    page = client.get(accept)
    assert page.status_code == 200 and "Accept the place" in page.text
    with session_scope(settings) as s:
        assert signups.get(s, second["id"]).status == "offered"
        # Nobody accepts: after CRM_WAITLIST_OFFER_HOURS the sweep offers it to the next in line.
        later = signups.utcnow() + dt.timedelta(hours=settings.waitlist_offer_hours, minutes=1)
        sweeps.shifts_sweep(s, settings, later)
        sweeps.shifts_sweep(s, settings, later)  # idempotent
    with session_scope(settings) as s:
        assert signups.get(s, second["id"]).status == "offer_lapsed"
        assert signups.get(s, third["id"]).status == "offered"
    assert client.post(accept).status_code == 409  # the lapsed offer cannot be taken any more
    [offer3] = to(mail(), "v2@example.org")
    r = client.post(link_path(offer3, r"/volunteer/[^/]+/offers/\d+"), follow_redirects=False)
    assert r.status_code == 303
    with session_scope(settings) as s:
        assert signups.get(s, third["id"]).status == "confirmed"


def test_changing_and_cancelling_a_shift_tells_everyone_on_it(client, auth, opp, settings, mail):
    shift = make_shift(client, auth, opp, capacity=1)
    a, b = volunteers(settings, 2)
    sign(client, auth, shift["id"], a)
    sign(client, auth, shift["id"], b)
    mail()
    new_start = future(3, 13)
    r = client.patch(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("editor"),
                     json={"starts_at": iso(new_start), "ends_at": iso(new_start + dt.timedelta(hours=2))})
    assert r.status_code == 200 and r.json()["starts_at"][11:16] == "13:00"
    changed = mail()
    assert sorted(m["To"] for m in changed) == ["v0@example.org", "v1@example.org"]
    assert all(m["Subject"].startswith("Changed:") for m in changed)
    assert client.patch(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("editor"),
                        json={"capacity": 1, "notes": "Bring a badge"}).status_code == 200
    assert [m["Subject"] for m in mail()] == []  # notes are not news
    assert client.delete(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("editor")).json()["status"] == "cancelled"
    gone = mail()
    assert sorted(m["To"] for m in gone) == ["v0@example.org", "v1@example.org"]
    assert all(m["Subject"].startswith("Canceled:") for m in gone)
    assert client.delete(f"/api/v1/volunteers/shifts/{shift['id']}", headers=auth("editor")).status_code == 200
    assert mail() == []
    [c] = volunteers(settings, 1, postal_code="30309")
    assert sign(client, auth, shift["id"], c).status_code == 409


def test_reminders_once_and_at_once_for_late_signups(client, auth, opp, settings, mail):
    soon = make_shift(client, auth, opp, days=0, hour=23, hours=1) if dt.datetime.now().hour < 22 else None
    later = make_shift(client, auth, opp, days=2, hour=9)
    a, b = volunteers(settings, 2)
    with session_scope(settings) as s:
        s.get(signups.Volunteer, b).shift_reminders = False
    sign(client, auth, later["id"], a)
    sign(client, auth, later["id"], b)
    assert mail() == []  # two days away: not yet
    start = dt.datetime.fromisoformat(later["starts_at_utc"])
    for _ in range(2):
        with session_scope(settings) as s:
            sweeps.shifts_sweep(s, settings, start - dt.timedelta(hours=settings.shift_reminder_hours - 1))
    mails = mail()
    assert [m["To"] for m in mails] == ["v0@example.org"]  # once, and not to b who turned reminders off
    assert mails[0]["Subject"].startswith("Reminder: Road To Recovery driver")
    cant = link_path(mails[0], r"/volunteer/[^/]+/signups/\d+/cancel")
    assert "I can't make it" in client.get(cant).text
    assert client.post(cant, follow_redirects=False).status_code == 303
    with session_scope(settings) as s:
        assert s.get(signups.ShiftSignup, 1) is not None
    got = client.get(f"/api/v1/volunteers/shifts/{later['id']}", headers=auth("viewer")).json()
    assert got["signed_up"] == 1  # b is still on it; a cancelled
    if soon is not None:
        sign(client, auth, soon["id"], a)
        assert [m["To"] for m in mail()] == ["v0@example.org"]  # signed up inside the window: at once


def test_attendance_and_hours(client, auth, opp, settings):
    shift = make_shift(client, auth, opp, capacity=2, hours=3)
    a, b = volunteers(settings, 2)
    sa = sign(client, auth, shift["id"], a).json()
    sb = sign(client, auth, shift["id"], b).json()
    h = auth("editor")
    r = client.patch(f"/api/v1/volunteers/signups/{sa['id']}", headers=h, json={"status": "completed", "hours": 2.5})
    assert r.status_code == 200 and r.json()["hours"] == 2.5
    assert client.patch(f"/api/v1/volunteers/signups/{sb['id']}", headers=h, json={"status": "no_show"}).status_code == 200
    assert client.patch(f"/api/v1/volunteers/signups/{sb['id']}", headers=h,
                        json={"status": "done", "hours": -1}).json()["errors"].keys() == {"status", "hours"}
    staff_logged = client.post(f"/api/v1/volunteers/{a}/hours", headers=h,
                               json={"date": dt.date.today().isoformat(), "hours": 1.5, "note": "office"}).json()
    assert staff_logged["status"] == "approved"
    bad = client.post(f"/api/v1/volunteers/{a}/hours", headers=h, json={"date": "someday", "hours": 30})
    assert bad.status_code == 400 and bad.json()["errors"].keys() == {"date", "hours"}
    token = token_for(settings, _contact_id(settings, a), "volunteer")
    mine = client.post(f"/api/v1/volunteer-portal/{token}/hours", json={"date": dt.date.today().isoformat(), "hours": 2})
    assert mine.status_code == 201 and mine.json()["status"] == "pending"
    pending = client.get("/api/v1/volunteers/hours?status=pending", headers=auth("viewer")).json()["items"]
    assert [p["id"] for p in pending] == [mine.json()["id"]]
    assert client.get(f"/api/v1/volunteers/{a}", headers=auth("viewer")).json()["hours_approved"] == 4.0
    assert client.patch(f"/api/v1/volunteers/hours/{mine.json()['id']}", headers=h,
                        json={"status": "approved"}).json()["reviewed_by"] == "editor@staff.example.org"
    assert client.get(f"/api/v1/volunteers/{a}", headers=auth("viewer")).json()["hours_approved"] == 6.0
    assert client.patch(f"/api/v1/volunteers/hours/{mine.json()['id']}", headers=h,
                        json={"status": "rejected"}).status_code == 409
    by_vol = client.get("/api/v1/volunteers/hours/totals?by=volunteer", headers=auth("viewer")).json()["items"]
    assert by_vol == [{"volunteer": a, "hours": 6.0, "records": 3}]
    by_opp = client.get("/api/v1/volunteers/hours/totals?by=opportunity", headers=auth("viewer")).json()["items"]
    assert {"opportunity": opp, "hours": 2.5, "records": 1} in by_opp
    by_month = client.get("/api/v1/volunteers/hours/totals?by=month", headers=auth("viewer")).json()["items"]
    assert sum(m["hours"] for m in by_month) == 6.0 and all(len(m["month"]) == 7 for m in by_month)
    today = dt.date.today().isoformat()
    csv = client.get(f"/api/v1/volunteers/hours.csv?from=2020-01-01&to={(dt.date.today() + dt.timedelta(days=5))}",
                     headers=auth("viewer"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("id,date,volunteer_id") and len(lines) == 4 and today in csv.text
    assert client.get("/api/v1/volunteers/hours.csv?from=2026-02-01&to=2026-01-01",
                      headers=auth("viewer")).status_code == 400


def _contact_id(settings: Settings, volunteer_id: int) -> int:
    with session_scope(settings) as s:
        return s.get(signups.Volunteer, volunteer_id).contact_id


def test_portal_twin_signup_cancel_and_scoped_token(client, auth, opp, settings):
    fits = make_shift(client, auth, opp, days=5)
    other = client.post("/api/v1/volunteers/opportunities", headers=auth("editor"),
                        json={**OPP, "area": "events", "title": "Gala helper"}).json()
    make_shift(client, auth, other["id"], days=6)  # not their area
    far = client.post("/api/v1/volunteers/opportunities", headers=auth("editor"),
                      json={**OPP, "postal_code": "90210", "title": "Far away"}).json()
    make_shift(client, auth, far["id"], days=6)  # not their postal prefix
    [a] = volunteers(settings, 1)
    token = token_for(settings, _contact_id(settings, a), "volunteer")
    view = client.get(f"/api/v1/volunteer-portal/{token}").json()
    assert [s["shift_id"] for s in view["open_shifts"]] == [fits["id"]]
    r = client.post(f"/api/v1/volunteer-portal/{token}/signups", json={"shift_id": fits["id"]})
    assert r.status_code == 201 and r.json()["status"] == "confirmed"
    view = client.get(f"/api/v1/volunteer-portal/{token}").json()
    assert view["open_shifts"] == [] and [u["shift_id"] for u in view["upcoming"]] == [fits["id"]]
    assert client.post(f"/api/v1/volunteer-portal/{token}/signups", json={"shift_id": "x"}).status_code == 400
    r = client.delete(f"/api/v1/volunteer-portal/{token}/signups/{view['upcoming'][0]['signup_id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    prefs = token_for(settings, _contact_id(settings, a), "preferences")
    assert client.get(f"/api/v1/volunteer-portal/{prefs}").status_code == 400  # wrong purpose
    assert client.get(f"/volunteer/{token}x").status_code == 400
    [b] = volunteers(settings, 1, postal_code="30303")
    other_token = token_for(settings, _contact_id(settings, b), "volunteer")
    assert client.delete(f"/api/v1/volunteer-portal/{other_token}/signups/{r.json()['id']}").status_code == 404


def test_volunteer_page_in_spanish_and_status_email_links_it(client, auth, opp, settings, mail):
    with session_scope(settings) as s:
        vol = make_volunteer(s, email="ana@example.org", first_name="Ana", language="es", status="onboarding")
        vid, cid = vol.id, vol.contact_id
    make_shift(client, auth, opp, days=5)
    page = client.get(f"/volunteer/{token_for(settings, cid, 'volunteer')}")
    assert page.status_code == 200 and 'lang="es"' in page.text and "Turnos abiertos" in page.text
    client.patch(f"/api/v1/volunteers/{vid}", headers=auth("editor"), json={"status": "active", "send_email": True})
    [status_mail] = to(mail(), "ana@example.org")
    assert "/volunteer/" in html_of(status_mail) and "/volunteer/" in text_of(status_mail)


def test_reminders_switch_in_the_preference_centre(client, settings):
    with session_scope(settings) as s:
        vol = make_volunteer(s, email="sw@example.org")
        vid, cid = vol.id, vol.contact_id
    token = token_for(settings, cid, "preferences")
    got = client.get(f"/api/v1/preferences/{token}").json()
    assert got["volunteer"]["shift_reminders"] is True
    page = client.get(f"/preferences/{token}")
    assert 'name="shift_reminders"' in page.text and "checked" in page.text
    r = client.put(f"/api/v1/preferences/{token}", json={"volunteer": {"shift_reminders": "no"}})
    assert r.status_code == 400 and "volunteer.shift_reminders" in r.json()["errors"]
    r = client.put(f"/api/v1/preferences/{token}", json={"volunteer": {"shift_reminders": False}})
    assert r.status_code == 200, r.text
    with session_scope(settings) as s:
        assert s.get(signups.Volunteer, vid).shift_reminders is False
    # The page's form: an unticked box is absent, a ticked one turns reminders back on.
    form = {"language": "en", "frequency": "weekly", "lists": "volunteer-updates", "areas": "transport-to-treatment",
            "availability": "weekends", "shift_reminders": "on"}
    assert client.post(f"/preferences/{token}", data=form).status_code == 200
    with session_scope(settings) as s:
        assert s.get(signups.Volunteer, vid).shift_reminders is True


def test_every_signup_change_is_an_event_for_webhooks(client, auth, opp, settings, session):
    from sqlalchemy import select

    from crm.events.models import Event

    shift = make_shift(client, auth, opp, capacity=1)
    first, second = volunteers(settings, 2)
    a = sign(client, auth, shift["id"], first).json()
    sign(client, auth, shift["id"], second)
    client.patch(f"/api/v1/volunteers/signups/{a['id']}", headers=auth("editor"), json={"status": "cancelled"})
    rows = session.scalars(select(Event).where(Event.type == "volunteer.signup_changed").order_by(Event.id)).all()
    assert [r.data["status"] for r in rows] == ["confirmed", "waitlisted", "cancelled", "offered"]
    assert all(r.contact_id is not None and r.data["shift_id"] == shift["id"] for r in rows)
