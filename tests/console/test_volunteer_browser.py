"""The volunteer coordinator's day in real headless Chromium: pipeline moves with the emails arriving over
SMTP from a real worker, two sign-ups for one place, hours approved in bulk; axe on every page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm.config import Settings
from crm.db import session_scope
from crm.volunteers.models import (
    Opportunity,
    Shift,
    ShiftSignup,
    Volunteer,
    VolunteerHours,
    VolunteerQualification,
)
from crm.volunteers.qualifications import create_type
from tests.browser import TABLET, check_page, chromium_page, sign_in
from tests.console.helpers import make_member
from tests.factories import make_volunteer
from tests.harness import celery_worker
from tests.helpers import text_of, volunteer_body

pytestmark = [pytest.mark.browser, pytest.mark.integration]

COORDINATOR = "coord@staff.example.org"


def check(page: Any, name: str) -> None:
    check_page(page, "console", f"volunteers-{name}")


def heading(page: Any) -> Any:
    return page.get_by_role("heading", level=1)


def move(page: Any, status: str, note: str, email: bool) -> None:
    from playwright.sync_api import expect

    page.get_by_label("New status").select_option(label=status)
    page.get_by_label("Note", exact=True).fill(note)
    if email:
        page.get_by_label("Send the status email").check()
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("status")).to_have_text("Status changed.")


def test_a_coordinator_takes_a_volunteer_from_interested_to_active(live_settings: Settings, smtp: Any,
                                                                  chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(live_settings, COORDINATOR, "editor")
    worker = celery_worker(live_settings, tmp_path / "worker.log")
    try:
        with chromium_page(live_settings, chromium_path, tmp_path) as (page, base):
            body = volunteer_body(email="hana@example.org", first_name="Hana", last_name="Mori",
                                  areas=["lodging-support"], availability=["weekday-evenings"], postal_code="30309")
            assert httpx.post(f"{base}/api/v1/forms/volunteer-interest", json=body).status_code == 202
            [notice] = smtp.wait_count(live_settings.notify_volunteers, 1)
            link = re.search(r"https?://\S+/staff/volunteers/\d+", text_of(notice)).group(0)  # type: ignore[union-attr]
            path = "/staff" + link.split("/staff", 1)[1]
            # The notice's link, signed out: the sign-in page, then straight to the volunteer.
            page.goto(base + path)
            expect(page).to_have_url(re.compile(r"/staff/login\?next="))
            page.get_by_label("Email").fill(COORDINATOR)
            page.get_by_label("Password").fill("correct horse battery staple")
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(base + path)
            expect(heading(page)).to_contain_text("Hana Mori")
            expect(heading(page)).to_contain_text("Interested")
            check(page, "volunteer-interested")

            page.get_by_role("link", name="Pipeline").click()
            expect(heading(page)).to_have_text("Volunteers")
            page.get_by_label("Status", exact=True).select_option(label="Interested")
            page.get_by_role("button", name="Filter").click()
            expect(page.get_by_role("link", name="Hana Mori")).to_be_visible()
            check(page, "pipeline")
            page.get_by_role("link", name="Board view").click()
            expect(page.get_by_role("heading", name=re.compile("^Interested"))).to_be_visible()
            check(page, "pipeline-board")
            page.set_viewport_size(TABLET)
            check(page, "pipeline-board-tablet")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.get_by_role("link", name="Hana Mori").click()

            move(page, "Contacted", "Called her, keen on hosting", email=False)
            move(page, "Onboarding", "Orientation on Tuesday", email=True)
            move(page, "Active", "Orientation done", email=True)
            expect(heading(page)).to_contain_text("Active")
            history = page.get_by_role("table", name="Status moves and notes, newest first")
            for text in ("Interested → Contacted", "Contacted → Onboarding", "Onboarding → Active",
                         "Orientation done", COORDINATOR):
                expect(history).to_contain_text(text)
            mails = smtp.wait_count("hana@example.org", 3)  # the welcome, onboarding steps, welcome to active
            subjects = [str(m["Subject"]) for m in mails]
            assert len(subjects) == 3 and len(set(subjects)) == 3, subjects
            page.reload()
            expect(page.get_by_role("table", name=re.compile("^Emails to Hana Mori"))).to_contain_text("Status update: Active")
            check(page, "volunteer-active")
            page.set_viewport_size(TABLET)
            check(page, "volunteer-active-tablet")
    finally:
        worker.stop()
    with session_scope(live_settings) as s:
        assert s.scalars(select(Volunteer.status)).one() == "active"


def _future(days: int, hour: int) -> str:
    return dt.datetime.combine(dt.date.today() + dt.timedelta(days=days), dt.time(hour)).strftime("%Y-%m-%dT%H:%M")


def test_two_sign_ups_for_one_place_put_the_second_on_the_waitlist(settings: Settings, chromium_path: str,
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, COORDINATOR, "editor")
    with session_scope(settings) as s:
        create_type(s, {"key": "background-check", "label": "Background check"})
        for first in ("Ann", "Bo"):
            make_volunteer(s, first_name=first, last_name="Helper", email=f"{first.lower()}@example.org",
                           areas=["events"], postal_code="30309")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, COORDINATOR)
        page.get_by_role("link", name="Volunteers", exact=True).click()
        page.get_by_role("link", name="Opportunities").click()
        check(page, "opportunities-empty")
        page.get_by_role("link", name="New opportunity").click()
        page.get_by_label("Title").fill("Gala greeters")
        page.get_by_label("Area").select_option(label="Events")
        page.get_by_label("Postal code").fill("30301")
        page.get_by_label("Volunteers needed").fill("0")
        check(page, "opportunity-new")
        page.get_by_role("button", name="Create opportunity").click()  # the browser refuses 0 (min=1)
        expect(heading(page)).to_have_text("New opportunity")
        page.get_by_label("Volunteers needed").fill("2")
        page.get_by_role("button", name="Create opportunity").click()
        expect(heading(page)).to_have_text("Gala greeters")
        expect(page.get_by_role("status")).to_have_text("Opportunity created.")
        expect(page.get_by_role("table", name="Who matches and why")).to_contain_text(
            "Postal code 30309 starts with 303, like 30301")
        page.get_by_label("Starts", exact=True).fill(_future(4, 18))
        page.get_by_label("Ends", exact=True).fill(_future(4, 21))
        page.get_by_label("Capacity").fill("1")
        page.get_by_label("Location").fill("Main hall")
        page.get_by_role("button", name="Add shift").click()
        expect(page.get_by_role("status")).to_have_text("Shift added.")
        check(page, "opportunity")
        page.get_by_role("link", name="Notify matches").click()
        expect(page.get_by_text("to 2 volunteers")).to_be_visible()
        check(page, "notify-confirm")
        page.go_back()

        page.get_by_role("link", name="Shift calendar").click()
        expect(heading(page)).to_have_text("Shift calendar")
        day = dt.date.today() + dt.timedelta(days=4)
        if day.weekday() < (dt.date.today()).weekday():  # the shift falls in next week
            page.get_by_role("link", name="Next week").click()
        shift_link = page.get_by_role("link", name=re.compile("18:00–21:00 Gala greeters"))
        expect(shift_link).to_be_visible()
        check(page, "calendar")
        shift_link.click()
        for first in ("Ann", "Bo"):
            page.get_by_label("Volunteer", exact=True).select_option(label=f"{first} Helper ({first.lower()}@example.org)")
            page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_role("status")).to_have_text("The shift is full: put on the waitlist.")
        signups = page.get_by_role("table", name="Who is on this shift")
        expect(signups.get_by_role("row", name=re.compile("Ann Helper"))).to_contain_text("Confirmed")
        expect(signups.get_by_role("row", name=re.compile("Bo Helper"))).to_contain_text("Waitlisted, number 1 in line")
        check(page, "shift-waitlist")
        page.get_by_role("link", name="This week on the calendar").click()
        expect(page.get_by_role("link", name=re.compile("Gala greeters")).locator("..")).to_contain_text("1 waiting")
        page.set_viewport_size(TABLET)
        check(page, "calendar-tablet")
    with session_scope(settings) as s:
        assert sorted(s.scalars(select(ShiftSignup.status))) == ["confirmed", "waitlisted"]


def test_refusals_are_shown_plainly_and_hours_are_approved_in_bulk(settings: Settings, chromium_path: str,
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, COORDINATOR, "editor")
    with session_scope(settings) as s:
        create_type(s, {"key": "drivers-licence", "label": "Driver's licence"})
        ids = [make_volunteer(s, first_name=f, last_name="Driver", email=f"{f.lower()}@example.org").id
               for f in ("Cy", "Di", "Ed")]
        for vid, hours in zip(ids, (2.0, 3.5, 1.0), strict=True):
            s.add(VolunteerHours(volunteer_id=vid, date=dt.date.today(), hours=hours, logged_by="self",
                                 status="pending", note="drove to the clinic"))
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, COORDINATOR)
        page.goto(f"{base}/staff/volunteers/opportunities/new")
        page.get_by_label("Title").fill("Road to treatment")
        page.get_by_label("Area").select_option(label="Driving patients to treatment")
        page.get_by_label("Postal code").fill("30301")
        page.get_by_label("Driver's licence").check()
        page.get_by_role("button", name="Create opportunity").click()
        expect(heading(page)).to_have_text("Road to treatment")
        page.get_by_label("Starts", exact=True).fill(_future(2, 9))
        page.get_by_label("Ends", exact=True).fill(_future(2, 12))
        page.get_by_role("button", name="Add shift").click()
        page.get_by_role("link", name=re.compile(r"\d\d:\d\d – 12:00")).click()
        page.get_by_label("Or their email address").fill("cy@example.org")
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_role("alert")).to_have_text(
            "Cy Driver is not signed up: this opportunity requires qualifications they do not hold on the "
            "shift's date: Driver's licence: missing.")
        check(page, "shift-refused")

        page.get_by_role("link", name="Hours to approve").click()
        expect(heading(page)).to_have_text("Hours to approve")
        check(page, "hours-queue")
        page.get_by_role("button", name="Choose all").click()
        page.get_by_role("checkbox", name=re.compile("hours of Ed Driver")).uncheck()
        page.get_by_role("button", name="Approve chosen hours").click()
        expect(page.get_by_role("status")).to_have_text("2 hours records approved.")
        expect(page.get_by_role("table")).to_contain_text("Ed Driver")
        expect(page.get_by_role("table")).not_to_contain_text("Cy Driver")
        check(page, "hours-approved")
        page.get_by_role("link", name="Pipeline").click()
        page.get_by_role("link", name="Cy Driver").click()
        expect(page.get_by_text("Approved in total: 2 hours.")).to_be_visible()
        check(page, "volunteer-hours")
    with session_scope(settings) as s:
        assert sorted(s.scalars(select(VolunteerHours.status))) == ["approved", "approved", "pending"]


def test_every_other_volunteer_page_passes_axe(settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    """The states the flows above do not reach: qualifications of each kind, attendance, the full board,
    a refused form, a viewer's read-only pages."""
    from playwright.sync_api import expect

    make_member(settings, COORDINATOR, "editor")
    make_member(settings, "viewer@staff.example.org", "viewer")
    now = dt.datetime.now(dt.UTC)
    with session_scope(settings) as s:
        create_type(s, {"key": "drivers-licence", "label": "Driver's licence"})
        for status in ("interested", "contacted", "onboarding", "active", "paused", "inactive"):
            make_volunteer(s, status=status, first_name=status.title(), last_name="Person",
                           email=f"{status}@example.org", areas=["events"])
        vid = s.scalars(select(Volunteer.id).where(Volunteer.status == "active")).one()
        today = dt.date.today()
        for obtained, expires in ((today - dt.timedelta(days=400), today - dt.timedelta(days=35)),
                                  (today - dt.timedelta(days=300), today + dt.timedelta(days=9)), (today, None)):
            s.add(VolunteerQualification(volunteer_id=vid, type_key="drivers-licence", obtained_on=obtained,
                                         expires_on=expires, verified_by=COORDINATOR))
        opp = Opportunity(title="Morning drives", area="events", postal_code="30301")
        s.add(opp)
        s.flush()
        shift = Shift(opportunity_id=opp.id, starts_at=now - dt.timedelta(hours=4), ends_at=now - dt.timedelta(hours=1),
                      capacity=2)
        s.add(shift)
        s.flush()
        s.add(ShiftSignup(shift_id=shift.id, volunteer_id=vid, status="confirmed", actor=COORDINATOR))
        shift_id, opp_id = shift.id, opp.id
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, COORDINATOR)
        page.goto(f"{base}/staff/volunteers?view=board")
        expect(page.get_by_role("heading", name=re.compile("^Inactive"))).to_be_visible()
        check(page, "pipeline-board-all")
        page.goto(f"{base}/staff/volunteers/{vid}")
        for state in ("Expired on", "Expires in 9 days", "Valid, no expiry date"):
            expect(page.get_by_role("table", name=re.compile("^Checked qualifications"))).to_contain_text(state)
        check(page, "volunteer-qualifications")
        page.goto(f"{base}/staff/volunteers/shifts/{shift_id}")
        page.get_by_label("Hours worked by Active Person").fill("2.5")
        page.get_by_role("button", name="Attended").click()
        expect(page.get_by_role("status")).to_have_text("Attendance saved.")
        check(page, "shift-attendance")
        page.goto(f"{base}/staff/volunteers/opportunities/{opp_id}/edit")
        page.get_by_label("Starts on").fill("2026-06-02")
        page.get_by_label("Ends on").fill("2026-06-01")
        page.get_by_role("button", name="Save opportunity").click()
        expect(page.get_by_role("alert")).to_contain_text("Ends on: must not be before starts_on")
        check(page, "opportunity-refused")
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, base, "viewer@staff.example.org")
        for path, name in ((f"/staff/volunteers/{vid}", "viewer-volunteer"), (f"/staff/volunteers/opportunities/{opp_id}",
                           "viewer-opportunity"), (f"/staff/volunteers/shifts/{shift_id}", "viewer-shift"),
                           ("/staff/volunteers/opportunities", "viewer-opportunities")):
            page.goto(base + path)
            expect(page.get_by_role("button", name=re.compile("Change status|Edit|Attended|Sign up"))).to_have_count(0)
            check(page, name)
    with session_scope(settings) as s:
        assert s.scalars(select(VolunteerHours.hours)).all() == [2.5]
