"""The offer and reminder flows end to end: a real Celery worker (with beat), a real SMTP server, the API
in a subprocess; time-machine moves this process's clock back to make the rows a day or two old."""

from __future__ import annotations

import datetime as dt
import re
import time

import httpx
import pytest
import time_machine
from sqlalchemy import select

from crm.celery_publisher import celery_client
from crm.db import session_scope
from crm.volunteers import shifts, signups
from crm.volunteers.models import Opportunity, ShiftSignup
from tests.factories import make_volunteer
from tests.harness import api_server, celery_worker
from tests.helpers import text_of

pytestmark = pytest.mark.integration


def _path(msg, pattern: str) -> str:
    m = re.search(pattern, text_of(msg))
    assert m, text_of(msg)
    return m.group(0)


def test_cancellation_offer_lapse_accept_reminder_and_cant_make_it(live_settings, smtp, tmp_path):
    settings = live_settings
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now + dt.timedelta(hours=23)  # inside tomorrow's reminder window
    with session_scope(settings) as s:
        opp = Opportunity(title="Road To Recovery driver", area="transport-to-treatment", postal_code="30301")
        s.add(opp)
        s.flush()
        [shift] = shifts.create(s, settings, opp.id, {"starts_at": start.isoformat(),
                                                      "ends_at": (start + dt.timedelta(hours=3)).isoformat(),
                                                      "capacity": 1}, "coord@staff.example.org")
        a, b, c = (make_volunteer(s, email=f"{n}@example.org", first_name=n.title()).id for n in ("ann", "ben", "cy"))
    # Signed up two days ago (too early for a reminder) ...
    with time_machine.travel(now - dt.timedelta(days=2), tick=True), session_scope(settings) as s:
        first, ids = signups.sign_up(s, settings, shift.id, a, "coord@staff.example.org")
        assert ids == []
        signups.sign_up(s, settings, shift.id, b, "coord@staff.example.org")
        signups.sign_up(s, settings, shift.id, c, "coord@staff.example.org")
    # ... and Ann cancelled 13 hours ago, more than CRM_WAITLIST_OFFER_HOURS.
    with time_machine.travel(now - dt.timedelta(hours=13), tick=True), session_scope(settings) as s:
        signups.change(s, settings, first.id, {"status": "cancelled"}, "coord@staff.example.org")

    worker = celery_worker(settings, tmp_path / "worker.log", beat=True)
    api, base = api_server(settings, tmp_path / "api.log")
    try:
        # The outbox sweep sends Ben's offer (queued while no worker ran) ...
        [offer_b] = smtp.wait_count("ben@example.org", 1)
        assert offer_b["Subject"].startswith("A place came free")
        # ... and the shifts sweep finds it lapsed (12 hours passed) and offers the place to Cy.
        celery_client(settings).send_task("worker.tasks.sweep_volunteer_shifts")
        [offer_c] = smtp.wait_count("cy@example.org", 1)
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as http:
            late = _path(offer_b, r"/volunteer/[^/\s]+/offers/\d+")
            assert "no longer open" in http.get(late).text
            assert http.post(late).status_code == 409
            accept = _path(offer_c, r"/volunteer/[^/\s]+/offers/\d+")
            assert "Accept the place" in http.get(accept).text
            with session_scope(settings) as s:  # the GET changed nothing
                assert s.scalars(select(ShiftSignup.status).where(ShiftSignup.volunteer_id == c)).one() == "offered"
            assert http.post(accept).status_code == 303
            # Confirmed 23 hours before the start: reminded at once, with the one-click "I can't make it".
            smtp.wait_for(lambda msgs: any(str(m["Subject"]).startswith("Reminder:") for m in msgs
                                           if m["To"] == "cy@example.org"))
            [reminder] = [m for m in smtp.to("cy@example.org") if m["Subject"].startswith("Reminder:")]
            # A worker restart and more sweeps send no second reminder.
            worker.kill9()
            worker = celery_worker(settings, tmp_path / "worker2.log", beat=True)
            for _ in range(2):
                celery_client(settings).send_task("worker.tasks.sweep_volunteer_shifts")
            time.sleep(5)  # let them run (and the outbox sweep after them)
            cant = _path(reminder, r"/volunteer/[^/\s]+/signups/\d+/cancel")
            assert "I can't make it" in http.get(cant).text
            assert http.post(cant).status_code == 303
        with session_scope(settings) as s:
            states = dict(s.execute(select(ShiftSignup.volunteer_id, ShiftSignup.status)
                                    .where(ShiftSignup.shift_id == shift.id)).tuples().all())
        assert states == {a: "cancelled", b: "offer_lapsed", c: "cancelled"}
        reminders = [m for m in smtp.to("cy@example.org") if m["Subject"].startswith("Reminder:")]
        assert len(reminders) == 1
        assert smtp.to("ann@example.org") == []  # cancelled before any reminder was due
    finally:
        api.stop()
        worker.stop()
