"""Many sign-ups at once: the place count and the overlap rule hold under real concurrency (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from crm.db import is_postgres, session_scope
from crm.volunteers import shifts, signups
from crm.volunteers.models import Opportunity, ShiftSignup
from tests.conftest import need
from tests.factories import make_volunteer

pytestmark = pytest.mark.postgres


def _shift(settings, start: dt.datetime, capacity: int) -> int:
    with session_scope(settings) as s:
        opp = Opportunity(title="Driver", area="transport-to-treatment", postal_code="30301")
        s.add(opp)
        s.flush()
        [made] = shifts.create(s, settings, opp.id, {"starts_at": start.isoformat(),
                                                      "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
                                                      "capacity": capacity}, "test")
        return made.id


def _fire(settings, calls: list[tuple[int, int]]) -> list[object]:
    """Each (shift, volunteer) sign-up in its own thread and transaction, released together."""
    gate = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int, shift_id: int, volunteer_id: int) -> None:
        gate.wait()
        try:
            with session_scope(settings) as s:
                results[i] = signups.sign_up(s, settings, shift_id, volunteer_id, "test")[0].status
        except Exception as exc:  # noqa: BLE001 - the test counts what each caller got
            results[i] = exc
    threads = [threading.Thread(target=run, args=(i, sh, v)) for i, (sh, v) in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_fifty_signups_at_a_shift_of_five(settings, session):
    need(is_postgres(session), "PostgreSQL row locks are what this test is about")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    shift_id = _shift(settings, start, 5)
    with session_scope(settings) as s:
        vols = [make_volunteer(s, email=f"c{i}@example.org").id for i in range(50)]
    results = _fire(settings, [(shift_id, v) for v in vols])
    assert sorted(map(str, results)) == ["confirmed"] * 5 + ["waitlisted"] * 45
    with session_scope(settings) as s:
        rows = list(s.scalars(select(ShiftSignup).where(ShiftSignup.shift_id == shift_id)))
    assert sum(r.status == "confirmed" for r in rows) == 5
    waiting = sorted((r for r in rows if r.status == "waitlisted"), key=lambda r: r.position)
    assert [r.position for r in waiting] == list(range(1, 46))  # in order, no gaps, no twins
    assert [r.id for r in waiting] == sorted(r.id for r in waiting)  # first come, first in line


def test_one_volunteer_racing_onto_overlapping_shifts_gets_one(settings, session):
    need(is_postgres(session), "PostgreSQL row locks are what this test is about")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    ids = [_shift(settings, start + dt.timedelta(minutes=10 * i), 5) for i in range(10)]
    with session_scope(settings) as s:
        vid = make_volunteer(s, email="racer@example.org").id
    results = _fire(settings, [(sid, vid) for sid in ids])
    assert sum(r == "confirmed" for r in results) == 1
    assert all(getattr(r, "fields", {}).get("shift_id") for r in results if r != "confirmed")
