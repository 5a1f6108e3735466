"""The volunteer pipeline: legal and illegal moves, history, status emails."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm.errors import Conflict, Invalid
from crm.volunteers import service
from crm.volunteers.models import VolunteerEvent
from tests.factories import make_volunteer
from tests.helpers import text_of, to

STATUSES = service.STATUSES
LEGAL = {(a, b) for a, targets in service.TRANSITIONS.items() for b in targets}
EXPECTED_LEGAL = {
    ("interested", "contacted"), ("interested", "inactive"),
    ("contacted", "onboarding"), ("contacted", "interested"), ("contacted", "inactive"),
    ("onboarding", "active"), ("onboarding", "contacted"), ("onboarding", "inactive"),
    ("active", "paused"), ("active", "inactive"),
    ("paused", "active"), ("paused", "inactive"),
    ("inactive", "interested"),
}


def test_transition_table_is_the_documented_one():
    assert LEGAL == EXPECTED_LEGAL
    # Everyone can leave; nobody is stuck.
    assert all("inactive" in service.TRANSITIONS[s] for s in STATUSES if s != "inactive")


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED_LEGAL))
def test_every_legal_move_is_made_and_recorded(session, settings, current, target):
    vol = make_volunteer(session, status=current)
    service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status=target, note="called"),
                        "coord@staff.example.org")
    session.refresh(vol)
    assert vol.status == target
    event = session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vol.id)
                            .order_by(VolunteerEvent.id.desc())).first()
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        current, target, "coord@staff.example.org", "called")


ILLEGAL = sorted((a, b) for a in STATUSES for b in STATUSES if a != b and (a, b) not in EXPECTED_LEGAL)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_illegal_move_is_refused_naming_both_ends(session, settings, current, target):
    vol = make_volunteer(session, status=current)
    with pytest.raises(Invalid) as err:
        service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status=target), "x@staff.example.org")
    assert current in err.value.fields["status"] and target in err.value.fields["status"]
    session.refresh(vol)
    assert vol.status == current


def test_unknown_status_is_named():
    with pytest.raises(Invalid) as err:
        service.VolunteerPatch.parse({"status": "retired"})
    assert "'retired'" in err.value.fields["status"]


@pytest.mark.parametrize(("body", "field"), [
    ({"areas": ["juggling"]}, "areas"),
    ({"areas": []}, "areas"),
    ({"availability": "weekends"}, "availability"),
    ({"paused_until": "next tuesday"}, "paused_until"),
    ({"send_email": "yes", "status": "contacted"}, "send_email"),
    ({"send_email": True}, "send_email"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_patch_fields_are_named(body, field):
    with pytest.raises(Invalid) as err:
        service.VolunteerPatch.parse(body)
    assert field in err.value.fields


def test_same_status_and_nothing_else_records_nothing(session, settings):
    vol = make_volunteer(session, status="active")
    before = len(service.history(session, vol.id))
    service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status="active"), "x@staff.example.org")
    assert len(service.history(session, vol.id)) == before


def test_profile_changes_and_notes_are_history(session, settings):
    vol = make_volunteer(session, status="active", areas=["events"], availability=["weekends"])
    patch = service.VolunteerPatch.parse({"areas": ["office", "events"], "availability": ["weekday-evenings"],
                                          "note": "prefers Tuesdays", "paused_until": "2030-01-31"})
    service.apply_patch(session, settings, vol.id, patch, "coord@staff.example.org")
    assert service.areas_of(session, vol.id) == ["events", "office"]
    assert service.availability_of(session, vol.id) == ["weekday-evenings"]
    last = service.history(session, vol.id)[-1]
    assert last["note"] == "prefers Tuesdays" and last["actor"] == "coord@staff.example.org"
    assert last["detail"]["paused_until"] == "2030-01-31" and last["detail"]["areas"] == ["office", "events"]


def test_resuming_from_pause_clears_paused_until(session, settings):
    vol = make_volunteer(session, status="paused", paused_until=dt.date(2030, 1, 1))
    service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status="active"), "x@staff.example.org")
    session.refresh(vol)
    assert vol.paused_until is None


def test_moving_to_contacted_sets_last_contact(session, settings):
    vol = make_volunteer(session, status="interested")
    assert vol.last_contacted_at is None
    service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status="contacted"), "x@staff.example.org")
    session.refresh(vol)
    assert vol.last_contacted_at is not None


def test_status_email_goes_only_when_asked_in_the_volunteers_language(session, settings, sent):
    quiet = make_volunteer(session, status="contacted", email="quiet@example.org")
    es = make_volunteer(session, status="contacted", email="lucia@example.org", language="es", first_name="Lucía")
    service.apply_patch(session, settings, quiet.id, service.VolunteerPatch(status="onboarding"), "x@staff.example.org")
    ids = service.apply_patch(session, settings, es.id, service.VolunteerPatch(status="onboarding", send_email=True),
                              "x@staff.example.org")
    session.commit()
    assert len(ids) == 1
    messages = sent()
    assert to(messages, "quiet@example.org") == []
    [msg] = to(messages, "lucia@example.org")
    assert msg["Subject"] == "Sus próximos pasos como voluntario"
    assert "orientación" in text_of(msg) and "/preferences/" in text_of(msg)
    assert service.history(session, es.id)[-1]["detail"]["email"] == "volunteer-status"


def test_no_status_email_to_a_bounced_address(session, settings):
    from crm.contacts import service as contacts

    vol = make_volunteer(session, status="contacted", email="gone@example.org")
    contacts.suppress(session, "gone@example.org", "bounced")
    with pytest.raises(Conflict):
        service.apply_patch(session, settings, vol.id, service.VolunteerPatch(status="onboarding", send_email=True),
                            "x@staff.example.org")


def test_filters(session):
    a = make_volunteer(session, status="active", areas=["events"], availability=["weekends"], postal_code="30301",
                       language="es")
    b = make_volunteer(session, status="interested", areas=["office"], availability=["weekday-daytime"],
                       postal_code="94110")
    b.last_contacted_at = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    session.add(b)
    session.flush()

    def ids(**kw):
        rows, _ = service.search(session, service.VolunteerFilters(**kw), None, 50)
        return {v.id for v, _ in rows}

    assert ids(area="events") == {a.id}
    assert ids(availability="weekday-daytime") == {b.id}
    assert ids(status="active") == {a.id}
    assert ids(postal_code="303") == {a.id}
    assert ids(language="es") == {a.id}
    assert ids(contacted_before=dt.date(2026, 2, 1)) == {b.id}
    assert ids(contacted_after=dt.date(2026, 1, 11)) == set()
    assert ids(contacted_after=dt.date(2026, 1, 10)) == {b.id}
    assert ids(never_contacted=True) == {a.id}
