"""The donor-services queue: moves, answers by email, overdue flags and the daily summary."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from crm.contacts import service as contacts
from crm.donations import service
from crm.errors import Conflict, Invalid
from crm.staff.service import create_staff
from tests.factories import make_contact
from tests.helpers import html_of, text_of, to

STAFF = "donor@staff.example.org"
ORDER = ["new", "assigned", "answered", "closed"]


def _inquiry(session, status="new", *, inquiry_type="monthly", email=None, **contact_fields):
    contact = make_contact(session, email=email, **contact_fields)
    inq = service.open_inquiry(session, contact, submission_id=None, inquiry_type=inquiry_type,
                               amount_range="$1,000-$5,000", message="How do I give monthly?", in_honor_of="")
    inq.status = status
    if status in ("answered", "closed"):
        inq.answer = "Thank you, here is how."
    if status != "new":
        inq.assigned_to = STAFF
    session.add(inq)
    session.flush()
    return inq


@pytest.fixture
def staff(session):
    create_staff(session, STAFF, "editor")
    create_staff(session, "other@staff.example.org", "viewer")
    session.flush()


def _patch(session, settings, inq, **body):
    return service.apply_patch(session, settings, inq.id, service.InquiryPatch.parse(body), STAFF)


FORWARD = [(a, b) for i, a in enumerate(ORDER) for b in ORDER[i + 1:]]
BACKWARD = [(a, b) for i, a in enumerate(ORDER) for b in ORDER[:i]]


@pytest.mark.parametrize(("current", "target"), FORWARD)
def test_forward_moves(session, settings, staff, current, target):
    inq = _inquiry(session, current)
    body = {"status": target}
    if target == "answered":
        body["answer"] = "Monthly gifts are set up on our giving page."
    _patch(session, settings, inq, **body)
    session.refresh(inq)
    assert inq.status == target
    assert inq.assigned_to == STAFF  # whoever moves it on is on record, if nobody was
    if target == "closed":
        assert inq.closed_at is not None


@pytest.mark.parametrize(("current", "target"), BACKWARD)
def test_backward_moves_are_conflicts(session, settings, staff, current, target):
    inq = _inquiry(session, current)
    with pytest.raises(Conflict) as err:
        _patch(session, settings, inq, status=target)
    assert current in err.value.message and target in err.value.message
    session.refresh(inq)
    assert inq.status == current


def test_unknown_status_and_unknown_staff_are_invalid(session, settings, staff):
    with pytest.raises(Invalid) as err:
        service.InquiryPatch.parse({"status": "pending"})
    assert "'pending'" in err.value.fields["status"]
    inq = _inquiry(session)
    with pytest.raises(Invalid) as err:
        _patch(session, settings, inq, assigned_to="stranger@example.org")
    assert "not a staff member" in err.value.fields["assigned_to"]
    with pytest.raises(Invalid):
        service.InquiryPatch.parse({"assigned_to": "not an email"})


def test_assigning_names_the_staff_member(session, settings, staff):
    inq = _inquiry(session)
    _patch(session, settings, inq, assigned_to="Other@Staff.example.org")
    session.refresh(inq)
    assert (inq.status, inq.assigned_to) == ("assigned", "other@staff.example.org")


def test_answered_needs_an_answer(session, settings, staff):
    inq = _inquiry(session, "assigned")
    with pytest.raises(Invalid) as err:
        _patch(session, settings, inq, status="answered")
    assert "answer" in err.value.fields


def test_answer_is_emailed_in_their_language_and_stored(session, settings, staff, sent):
    inq = _inquiry(session, "assigned", email="rosa@example.org", language="es", first_name="Rosa")
    ids = _patch(session, settings, inq, status="answered", answer="Puede donar cada mes.\n\nGracias.")
    assert len(ids) == 1
    assert inq.answer == "Puede donar cada mes.\n\nGracias." and inq.answered_by == STAFF and inq.answered_at
    session.commit()
    [msg] = to(sent(), "rosa@example.org")
    assert msg["Subject"].startswith("Su consulta sobre donaciones")
    assert "Puede donar cada mes." in text_of(msg) and "Hola, Rosa:" in text_of(msg)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "$1,000" not in text_of(msg) and "$1,000" not in html_of(msg)


def test_an_answer_alone_answers_and_is_sent_once(session, settings, staff, sent):
    inq = _inquiry(session, email="al@example.org")
    _patch(session, settings, inq, answer="Here is how.")
    _patch(session, settings, inq, answer="Here is how.")  # a retried PATCH
    session.commit()
    assert inq.status == "answered"
    assert len(to(sent(), "al@example.org")) == 1
    with pytest.raises(Conflict):
        _patch(session, settings, inq, answer="Something else")


def test_no_answer_email_to_an_erased_or_bounced_person(session, settings, staff):
    inq = _inquiry(session, email="b@example.org")
    contacts.suppress(session, "b@example.org", "bounced")
    with pytest.raises(Conflict):
        _patch(session, settings, inq, answer="x")


def test_closed_is_final(session, settings, staff):
    inq = _inquiry(session, "closed")
    with pytest.raises(Conflict):
        _patch(session, settings, inq, assigned_to=STAFF)
    _patch(session, settings, inq, status="closed")  # repeating the final state is fine


def test_tribute_marks_the_contact_bereaved(session):
    inq = _inquiry(session, inquiry_type="tribute-memorial")
    contact = session.get(contacts.Contact, inq.contact_id)
    assert contact.bereaved is True


def test_overdue_flag_with_time_frozen(session, settings):
    with time_machine.travel(dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC), tick=False) as clock:
        waiting = _inquiry(session, "new")
        assigned = _inquiry(session, "assigned")
        answered = _inquiry(session, "answered")
        clock.shift(dt.timedelta(hours=settings.donation_overdue_hours - 1))
        fresh = _inquiry(session, "new")
        assert not service.is_overdue(settings, waiting)
        clock.shift(dt.timedelta(hours=2))
        flags = {i.id: service.inquiry_dict(settings, i, None)["overdue"] for i in (waiting, assigned, answered, fresh)}
        assert flags == {waiting.id: True, assigned.id: True, answered.id: False, fresh.id: False}
        rows, _ = service.search(session, settings, service.InquiryFilters(overdue=True), None, 50)
        assert {i.id for i, _ in rows} == {waiting.id, assigned.id}
        rows, _ = service.search(session, settings, service.InquiryFilters(older_than_hours=24), None, 50)
        assert {i.id for i, _ in rows} == {waiting.id, assigned.id, answered.id}


def test_daily_summary_lists_overdue_without_amounts_once_a_day(session, settings, sent):
    with time_machine.travel(dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC), tick=False) as clock:
        assert service.queue_overdue_summary(session, settings) is None  # nothing waiting: no email
        old = _inquiry(session, "new", inquiry_type="tribute-memorial")
        clock.shift(dt.timedelta(hours=settings.donation_overdue_hours + 5))
        assert service.queue_overdue_summary(session, settings) is not None
        assert service.queue_overdue_summary(session, settings) is None  # same day: deduped
        session.commit()
        [msg] = to(sent(), settings.notify_donations)
        assert msg["Subject"] == "1 donation inquiry waiting over 48 hours (2026-03-03)"
        assert f"#{old.id}" in text_of(msg) and "A gift in honor or memory of someone" in text_of(msg)
        assert "$" not in text_of(msg) and "1,000" not in html_of(msg)
        clock.shift(dt.timedelta(days=1))
        assert service.queue_overdue_summary(session, settings) is not None  # the next day: again
