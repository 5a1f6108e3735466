"""Journeys on SQLite, in one process: the clock moved with time-machine, mail through the real pipeline
(MemorySender). What a person would notice: which emails arrive, when, in which language, and that
nobody gets a step twice or after leaving."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import func, select

from crm.campaigns.models import Campaign, Delivery
from crm.contacts import service as contacts
from crm.db import session_scope
from crm.errors import Conflict, Invalid
from crm.events import service as events
from crm.journeys import examples, service, stats, stepping
from crm.journeys.models import JourneyEnrolment
from tests.factories import make_contact
from tests.journeys.helpers import make_active, run, spec, subjects

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)  # a Monday morning: outside the default quiet hours


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def _confirm(settings, email: str, **fields) -> int:
    with session_scope(settings) as s:
        return make_contact(s, email=email, lists={"newsletter": "confirmed"}, **fields).id


def test_invalid_journey_names_every_bad_field(session, settings):
    bad = spec(trigger={"event": "no.such"}, reentry="sometimes", list="nope",
               steps=[{"wait": {"days": -1}, "body_html": "<p>x</p>"}, {"subject": "{% if %}"}], colour="red")
    with pytest.raises(Invalid) as err:
        service.create(session, settings, bad, "e@x")
    fields = err.value.fields
    assert {"trigger", "reentry", "list", "colour", "steps[0].wait.days", "steps[0].subject",
            "steps[1].subject"} <= set(fields), fields
    assert "unknown event" in fields["trigger"]


def test_confirmation_enrols_and_steps_arrive_in_order_with_their_gaps_and_language(settings, clock):
    journey_id = make_active(settings)
    _confirm(settings, "ana@example.org", first_name="Ana", language="es")
    _confirm(settings, "ben@example.org", first_name="Ben")
    got = run(settings)
    assert sorted(subjects(got)) == ["One for Ben", "Uno"]
    clock.shift(dt.timedelta(days=2) - dt.timedelta(minutes=1))
    assert run(settings) == []  # the second step waits two days from the first one's send
    clock.shift(dt.timedelta(minutes=2))
    assert sorted(subjects(run(settings))) == ["Two", "Two"]
    clock.shift(dt.timedelta(days=3))
    assert run(settings) == []
    clock.shift(dt.timedelta(hours=1, minutes=1))
    assert subjects(run(settings), "ben@example.org") == ["Three"]
    for _ in range(3):  # more ticks, later: nothing twice
        clock.shift(dt.timedelta(days=30))
        assert run(settings) == []
    with session_scope(settings) as s:
        figures = stats.stats(s, journey_id)
    assert [(st["entered"], st["sent"]) for st in figures["steps"]] == [(2, 2), (2, 2), (2, 2)]
    assert figures["enrolments"]["completed"] == 2


def test_unsubscribe_between_steps_stops_the_rest(settings, clock):
    journey_id = make_active(settings)
    cid = _confirm(settings, "cy@example.org")
    assert subjects(run(settings)) == ["One for"]
    with session_scope(settings) as s:
        contacts.set_subscription_state(s, contacts.subscription(s, cid, "newsletter"), "unsubscribed")
    clock.shift(dt.timedelta(days=40))
    assert run(settings) == []
    with session_scope(settings) as s:
        run_ = s.scalars(select(JourneyEnrolment)).one()
        assert (run_.state, run_.exit_reason) == ("exited", "subscription.unsubscribed")
        assert stats.stats(s, journey_id)["steps"][1]["exited"] == 1


def test_unsubscribe_while_a_step_is_queued_sends_nothing(settings, clock):
    make_active(settings)
    cid = _confirm(settings, "dee@example.org")
    stepping.tick(settings)  # step one is queued in the pipeline, not yet sent
    with session_scope(settings) as s:
        contacts.set_subscription_state(s, contacts.subscription(s, cid, "newsletter"), "unsubscribed")
    assert run(settings) == []


def test_import_and_staff_confirmations_do_not_enrol_unless_asked(settings, clock):
    make_active(settings)
    other = make_active(settings, name="Everyone", include_imported=True)
    with session_scope(settings) as s:
        c = make_contact(s, email="imp@example.org")
        sub = contacts.ensure_subscription(s, c.id, "newsletter")
        contacts.set_subscription_state(s, sub, "confirmed", source="staff")
        d = make_contact(s, email="csv@example.org")
        sub = contacts.ensure_subscription(s, d.id, "newsletter")
        sub.state = "confirmed"
        events.record_many(s, "subscription.confirmed", [d.id], list="newsletter", state="confirmed", source="import")
    stepping.tick(settings)
    with session_scope(settings) as s:
        runs = s.execute(select(JourneyEnrolment.journey_id, func.count()).group_by(JourneyEnrolment.journey_id)).all()
    assert dict(runs) == {other: 2}


@pytest.mark.parametrize(("mode", "runs_after_second_confirmation"), [("never", 1), ("after_exit", 2), ("always", 2)])
def test_reentry_modes(settings, clock, mode, runs_after_second_confirmation):
    make_active(settings, reentry=mode, steps=[spec()["steps"][0], {**spec()["steps"][1], "wait": {"days": 1}}])
    cid = _confirm(settings, "eve@example.org")
    run(settings)
    with session_scope(settings) as s:  # leaves the list and comes back while (or after) the run goes on
        sub = contacts.subscription(s, cid, "newsletter")
        contacts.set_subscription_state(s, sub, "unsubscribed")
    run(settings)
    clock.shift(dt.timedelta(minutes=5))
    with session_scope(settings) as s:
        contacts.set_subscription_state(s, contacts.subscription(s, cid, "newsletter"), "confirmed")
    got = run(settings)
    with session_scope(settings) as s:
        n = s.scalar(select(func.count()).select_from(JourneyEnrolment))
        active = s.scalar(select(func.count()).select_from(JourneyEnrolment).where(JourneyEnrolment.state == "active"))
    assert n == runs_after_second_confirmation
    assert active <= 1
    assert len(got) == (0 if mode == "never" else 1)


def test_always_restarts_a_run_in_progress(settings, clock):
    make_active(settings, reentry="always", trigger={"event": "form.submitted", "form": "newsletter"})
    with session_scope(settings) as s:
        cid = make_contact(s, email="fay@example.org", lists={"newsletter": "confirmed"}).id
        events.record(s, "form.submitted", cid, form="newsletter")
    assert len(run(settings)) == 1
    clock.shift(dt.timedelta(hours=1))
    with session_scope(settings) as s:
        events.record(s, "form.submitted", cid, form="newsletter")
    assert subjects(run(settings)) == ["One for"]  # step one again, in a fresh run
    with session_scope(settings) as s:
        states = sorted(s.scalars(select(JourneyEnrolment.exit_reason)).all(), key=str)
    assert states == [None, "restarted"] or states == ["restarted", None]


def test_quiet_hours_move_a_due_step_to_the_morning(settings):
    evening = dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC)
    with time_machine.travel(evening, tick=False) as clock:
        make_active(settings)
        _confirm(settings, "gus@example.org")
        assert run(settings) == []  # 22:30 is inside 21-8
        clock.move_to(dt.datetime(2026, 3, 3, 7, 59, tzinfo=dt.UTC))
        assert run(settings) == []
        clock.move_to(dt.datetime(2026, 3, 3, 8, 1, tzinfo=dt.UTC))
        assert subjects(run(settings)) == ["One for"]


def test_segment_that_does_not_match_skips_the_step_and_the_next_still_comes(settings, clock):
    steps = spec()["steps"]
    steps[0] = {**steps[0], "segment": {"language": "es"}}
    journey_id = make_active(settings, steps=steps)
    _confirm(settings, "hal@example.org")
    assert run(settings) == []
    clock.shift(dt.timedelta(days=2, minutes=1))
    assert subjects(run(settings)) == ["Two"]
    with session_scope(settings) as s:
        first = stats.stats(s, journey_id)["steps"][0]
    assert (first["entered"], first["sent"], first["skipped"]) == (1, 0, 1)


def test_exit_event_ends_the_run(settings, clock):
    make_active(settings, exit=[{"event": "form.submitted", "form": "donation-inquiry"}])
    cid = _confirm(settings, "ivy@example.org")
    run(settings)
    with session_scope(settings) as s:
        events.record(s, "form.submitted", cid, form="donation-inquiry")
    clock.shift(dt.timedelta(days=10))
    assert run(settings) == []


def test_paused_journey_holds_people_and_resumes(settings, clock):
    journey_id = make_active(settings)
    with session_scope(settings) as s:
        service.pause(s, settings, journey_id)
    _confirm(settings, "jo@example.org")
    assert run(settings) == []
    with session_scope(settings) as s:
        service.activate(s, settings, journey_id)
    assert subjects(run(settings)) == ["One for"]


def test_editing_a_step_applies_to_people_who_have_not_reached_it(settings, clock):
    journey_id = make_active(settings)
    _confirm(settings, "kim@example.org")
    run(settings)
    with session_scope(settings) as s:
        steps = spec()["steps"]
        steps[1] = {**steps[1], "subject": "Two, revised"}
        service.change(s, settings, journey_id, {"steps": steps})
    clock.shift(dt.timedelta(days=2, minutes=1))
    assert subjects(run(settings)) == ["Two, revised"]


def test_two_ticks_at_once_hand_each_step_once(settings, clock):
    make_active(settings)
    for i in range(20):
        _confirm(settings, f"p{i}@example.org")
    stepping.tick(settings)
    stepping.tick(settings)
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 20
    assert len(run(settings)) == 20


def test_activate_needs_steps_and_pause_needs_a_started_journey(session, settings):
    journey = service.create(session, settings, spec(), "e@x")
    with pytest.raises(Conflict):
        service.pause(session, settings, journey.id)


def test_built_in_examples_load_once_as_drafts(session, settings):
    assert examples.load(session, settings) == 2
    assert examples.load(session, settings) == 0
    rows = service.list_journeys(session, None, 10)[0]
    assert {j.state for j in rows} == {"draft"}
    welcome = next(j for j in rows if j.key == "newsletter-welcome")
    assert service.as_dict(session, welcome)["steps"][0]["translations"]["es"]["subject"].startswith(
        "Le damos la bienvenida")
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
