"""Digest runs in one process: who is due, which items, never twice, crashes (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from crm.campaigns import digests, pipeline
from crm.campaigns.models import Campaign, Delivery, DigestItem
from crm.contacts import service as contacts
from crm.contacts.models import Subscription
from crm.content.models import ContentItem, ContentTopic
from crm.db import session_scope
from crm.mail import MemorySender
from tests.factories import make_contact, make_volunteer
from tests.helpers import text_of

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)  # a Tuesday, 09:00 UTC
DAY = dt.timedelta(days=1)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def make_item(session: Any, title: str, topics: list[str], *, language: str = "en", age: dt.timedelta = DAY,
              now: dt.datetime | None = None) -> int:
    item = ContentItem(title=title, url=f"https://example.org/{title.lower().replace(' ', '-')}",
                       summary=f"About {title}.", language=language, published_at=(now or T0) - age)
    session.add(item)
    session.flush()
    for key in topics:
        session.add(ContentTopic(content_id=item.id, interest_key=key))
    session.flush()
    return item.id  # type: ignore[return-value]


def reader(session: Any, email: str, interests: list[str] | None = None, *, frequency: str | None = None,
           **fields: Any) -> int:
    c = make_contact(session, email=email, interests=interests, lists={"newsletter": "confirmed"},
                     frequency=frequency, **fields)
    return c.id  # type: ignore[return-value]


def run(settings: Any, frequency: str = "weekly") -> digests.DigestRun:
    with session_scope(settings) as s:
        return digests.plan_run(s, settings, frequency)


def ledger(settings: Any) -> dict[int, list[int]]:
    """contact_id -> content ids planned for them (all runs), in insertion order."""
    out: dict[int, list[int]] = {}
    with session_scope(settings) as s:
        for contact_id, content_id in s.execute(select(DigestItem.contact_id, DigestItem.content_id)
                                                .order_by(DigestItem.id)):
            out.setdefault(contact_id, []).append(content_id)
    return out


def items_of(settings: Any, run_id: int, contact_id: int) -> list[int]:
    with session_scope(settings) as s:
        return [r["id"] for r in pipeline.digest_items(s, run_id, [contact_id])[contact_id]]


def send_all(settings: Any, run_id: int) -> list[Any]:
    for _ in range(20):
        if not pipeline.send_some(settings, run_id).has_more:
            break
    return list(MemorySender.outbox)


def test_items_meet_the_contacts_interests(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        trials = make_item(s, "Finding a clinical trial", ["clinical-trials"])
        care = make_item(s, "Caring at home", ["caregiving"])
        both = make_item(s, "Trials for carers", ["caregiving", "clinical-trials"])
        quit_ = make_item(s, "Quitting tobacco", ["tobacco-cessation"])
        a = reader(s, "a@example.org", ["clinical-trials"])
        b = reader(s, "b@example.org", ["caregiving", "clinical-trials"])
        c = reader(s, "c@example.org")  # chose no topic: everything is for them
        d = reader(s, "d@example.org", ["advocacy"])  # nothing on their topic this week
    result = run(settings)
    assert result.planned and result.recipients == 3
    assert items_of(settings, result.run_id, a) == [both, trials]  # same date: newest id first
    assert sorted(items_of(settings, result.run_id, b)) == sorted([trials, care, both])
    assert sorted(items_of(settings, result.run_id, c)) == sorted([trials, care, both, quit_])
    assert d not in ledger(settings)

    messages = send_all(settings, result.run_id)
    assert Counter(m["To"] for m in messages) == Counter({"a@example.org": 1, "b@example.org": 1,
                                                         "c@example.org": 1})
    text = text_of(next(m for m in messages if m["To"] == "a@example.org"))
    assert "Finding a clinical trial" in text and "Caring at home" not in text


def test_at_most_eight_newest_first_and_only_within_the_period(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        ids = [make_item(s, f"Research note {i}", ["research-news"], age=dt.timedelta(hours=6 * (i + 1)))
               for i in range(10)]
        old = make_item(s, "Last month", ["research-news"], age=8 * DAY)
        future = make_item(s, "Embargoed", ["research-news"], age=-DAY)
        who = reader(s, "r@example.org", ["research-news"])
    result = run(settings)
    got = items_of(settings, result.run_id, who)
    assert got == ids[:8]  # newest first
    assert old not in got and future not in got


def test_never_the_same_item_twice_across_runs(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        first = [make_item(s, f"Side effects {i}", ["treatment-and-side-effects"], age=(i + 1) * DAY)
                 for i in range(3)]
        who = reader(s, "m@example.org", ["treatment-and-side-effects"], frequency="monthly")
    one = run(settings, "monthly")
    assert sorted(items_of(settings, one.run_id, who)) == sorted(first)

    clock.move_to(T0 + 29 * DAY)
    with session_scope(settings) as s:
        # The first three are still inside the 31-day window: only the ledger keeps them out.
        new = make_item(s, "Immunomodulators and Their Side Effects", ["treatment-and-side-effects"],
                        now=T0 + 29 * DAY)
    two = run(settings, "monthly")
    assert two.run_id != one.run_id
    assert items_of(settings, two.run_id, who) == [new]
    assert Counter(ledger(settings)[who]) == Counter(first + [new])  # each once


def test_a_contact_with_nothing_new_gets_no_delivery_and_no_email(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        make_item(s, "Gala night", ["fundraising-events"])
        quiet = reader(s, "quiet@example.org", ["advocacy"])
        busy = reader(s, "busy@example.org", ["fundraising-events"])
    result = run(settings)
    with session_scope(settings) as s:
        delivered = set(s.scalars(select(Delivery.contact_id).where(Delivery.campaign_id == result.run_id)))
        last = {sub.contact_id: sub.last_digest_at for sub in s.scalars(select(Subscription))}
    assert delivered == {busy}
    assert last[quiet] is None and last[busy] == T0  # the quiet one stays due
    assert [m["To"] for m in send_all(settings, result.run_id)] == ["busy@example.org"]

    # Nobody at all with anything new: no email, and the answer still names a run.
    MemorySender.outbox.clear()
    with session_scope(settings) as s:
        reader(s, "late@example.org", ["advocacy"])
    again = run(settings)
    assert not again.planned and again.recipients == 0
    assert again.run_id == result.run_id  # the same due window's run, no empty twin
    assert MemorySender.outbox == []


def test_language_with_english_fallback(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        en_trials = make_item(s, "Clinical trials explained", ["clinical-trials"])
        es_trials = make_item(s, "Ensayos clínicos explicados", ["clinical-trials"], language="es")
        en_care = make_item(s, "Caregiver burnout", ["caregiving"])
        es_reader = reader(s, "es@example.org", ["clinical-trials"], language="es")
        es_fallback = reader(s, "es2@example.org", ["caregiving"], language="es")
        en_reader = reader(s, "en@example.org", ["clinical-trials"])
    result = run(settings)
    assert items_of(settings, result.run_id, es_reader) == [es_trials]
    assert items_of(settings, result.run_id, es_fallback) == [en_care]
    assert items_of(settings, result.run_id, en_reader) == [en_trials]

    messages = {m["To"]: m for m in send_all(settings, result.run_id)}
    es_text = text_of(messages["es@example.org"])
    assert "Ensayos clínicos explicados" in es_text
    assert "== Ensayos clínicos ==" in es_text  # topic heading in Spanish
    assert "Cancelar suscripción" in es_text
    assert messages["es@example.org"]["Subject"].startswith("Novedades de esta semana")


def test_paused_volunteers_are_skipped_until_their_date(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        make_item(s, "Volunteer stories", ["volunteering"])
        vol = make_volunteer(s, email="vol@example.org", paused_until=(T0 + 3 * DAY).date(),
                             lists={"newsletter": "confirmed", "volunteer-updates": "confirmed"})
        contacts.add_interests(s, vol.contact_id, ["volunteering"])
        ended = make_volunteer(s, email="back@example.org", paused_until=(T0 - DAY).date(),
                               lists={"newsletter": "confirmed"})
        contacts.add_interests(s, ended.contact_id, ["volunteering"])
    first = run(settings)
    assert set(ledger(settings)) == {ended.contact_id}

    clock.move_to(T0 + 4 * DAY)  # the pause is over; the item is still inside the week
    second = run(settings)
    assert second.planned and second.recipients == 1
    assert ledger(settings)[vol.contact_id] and first.run_id != second.run_id


def test_due_logic_weekly_versus_monthly(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        weekly = reader(s, "w@example.org", ["research-news"], frequency="weekly")
        default = reader(s, "d@example.org", ["research-news"])  # no choice recorded: weekly
        monthly = reader(s, "mo@example.org", ["research-news"], frequency="monthly")
        never = reader(s, "n@example.org", ["research-news"], frequency="never")

    def publish_and_run(at: dt.datetime, frequency: str) -> set[int]:
        clock.move_to(at)
        with session_scope(settings) as s:
            make_item(s, f"News {at.isoformat()} {frequency}", ["research-news"], age=dt.timedelta(hours=1), now=at)
        result = run(settings, frequency)
        with session_scope(settings) as s:
            return set(s.scalars(select(Delivery.contact_id).where(Delivery.campaign_id == result.run_id))) \
                if result.planned else set()

    assert publish_and_run(T0, "weekly") == {weekly, default}
    assert publish_and_run(T0, "monthly") == {monthly}
    assert publish_and_run(T0 + 3 * DAY, "weekly") == set()  # three days on: nobody due
    # A week on, a few seconds "early" against last week's plan: weekly readers are due again.
    assert publish_and_run(T0 + 7 * DAY - dt.timedelta(seconds=5), "weekly") == {weekly, default}
    assert publish_and_run(T0 + 7 * DAY, "monthly") == set()
    assert publish_and_run(T0 + 20 * DAY, "monthly") == set()
    # February 1st to March 1st is 28 days: a monthly reader must not skip March.
    assert publish_and_run(T0 + 28 * DAY, "monthly") == {monthly}
    assert never not in ledger(settings)


def test_two_runs_in_the_same_window_plan_once(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        make_item(s, "Patient programme", ["patient-programs"])
        reader(s, "p@example.org", ["patient-programs"])
    first, second = run(settings), run(settings)
    assert first.planned and not second.planned and second.run_id == first.run_id
    with session_scope(settings) as s:
        assert len(s.scalars(select(Delivery.id)).all()) == 1
        assert len(s.scalars(select(Campaign.id)).all()) == 1


class CrashingSender(MemorySender):
    """An SMTP stand-in whose worker dies (SystemExit) on the n-th message, before it is sent."""

    def __init__(self, after: int) -> None:
        self.left = after

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        if self.left == 0:
            raise SystemExit("worker killed")
        self.left -= 1
        super().send_raw(envelope_from, to, data, message_id)


def test_a_crash_mid_run_then_a_rerun_sends_nobody_twice_and_misses_nobody(settings: Any, clock: Any) -> None:
    with session_scope(settings) as s:
        make_item(s, "Questions to Ask Your Doctor", ["cancer-information"])
        people = {reader(s, f"c{i}@example.org", ["cancer-information"]) for i in range(6)}

    # 1. The planner dies before its transaction commits: nothing of it survives.
    with pytest.raises(RuntimeError), session_scope(settings) as s:
        digests.plan_run(s, settings, "weekly")
        raise RuntimeError("worker killed while planning")
    assert ledger(settings) == {}

    # 2. The rerun plans everyone; the sender then dies after two messages.
    planned = run(settings)
    assert planned.recipients == 6
    with pytest.raises(SystemExit):
        pipeline.send_some(settings, planned.run_id, CrashingSender(after=2))
    assert len(MemorySender.outbox) == 2

    # 3. The beat runs again at once: nobody is due, nothing new is planned.
    rerun = run(settings)
    assert not rerun.planned and rerun.run_id == planned.run_id

    # 4. The dead worker's lease runs out and the pipeline finishes the run.
    clock.move_to(T0 + dt.timedelta(seconds=settings.lease_seconds + 5))
    send_all(settings, planned.run_id)
    counts = Counter(m["To"] for m in MemorySender.outbox)
    assert set(counts.values()) == {1} and len(counts) == len(people)
    with session_scope(settings) as s:
        assert digests.stats(s, planned.run_id)["sent"] == 6


def test_two_runs_at_the_same_moment_plan_once(settings: Any, clock: Any) -> None:
    import threading

    with session_scope(settings) as s:
        make_item(s, "Event news", ["fundraising-events"])
        for i in range(3):
            reader(s, f"e{i}@example.org", ["fundraising-events"])
    results: list[digests.DigestRun] = []
    with session_scope(settings) as first:
        results.append(digests.plan_run(first, settings, "weekly"))
        # A second run starts while the first has not committed: it must wait, then find nobody due.
        second = threading.Thread(target=lambda: results.append(run(settings)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # blocked behind the first run's lock
    second.join(timeout=30)
    assert [r.planned for r in results] == [True, False]
    assert results[1].run_id == results[0].run_id
    with session_scope(settings) as s:
        assert len(s.scalars(select(Delivery.id)).all()) == 3
