"""The preference service on its own: reading, changing, unsubscribing, fresh links."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm.contacts import service as contacts
from crm.contacts.models import ConsentEvent, Contact
from crm.errors import Invalid
from crm.forms.service import RequestMeta
from crm.outbox.models import OutboxMessage
from crm.preferences import service
from crm.volunteers import service as volunteers
from crm.volunteers.models import VolunteerEvent
from tests.factories import make_contact

TODAY = dt.date(2026, 11, 24)
ORIGIN = service.origin_of("preferences", RequestMeta("203.0.113.9", "pytest-agent"))


def _volunteer(session, contact):
    vol, _ = volunteers.upsert_from_form(session, contact.id, postal_code="30301", areas=["events"],
                                         availability=["weekends"], skills="", languages=[], message="")
    return vol


def _events(session, contact_id):
    return list(session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                .order_by(ConsentEvent.id)))


def test_preferences_of_has_the_contract_shape(session):
    c = make_contact(session, first_name="Ana", interests=["caregiving"], lists={"newsletter": "confirmed"},
                     frequency="monthly", language="es")
    prefs = service.preferences_of(session, c)
    assert prefs["email"] == c.email and prefs["first_name"] == "Ana" and prefs["language"] == "es"
    assert prefs["interests"] == ["caregiving"] and prefs["frequency"] == "monthly"
    assert prefs["lists"] == {"newsletter": "confirmed"}
    assert "volunteer" not in prefs
    _volunteer(session, c)
    assert service.preferences_of(session, c)["volunteer"] == {"areas": ["events"], "availability": ["weekends"],
                                                               "paused_until": None, "shift_reminders": True}


def test_save_changes_interests_and_frequency_with_a_consent_event_each(session, settings):
    c = make_contact(session, interests=["caregiving"], lists={"newsletter": "confirmed"})
    update = service.parse_json(session, c, {"interests": ["clinical-trials", "caregiving"],
                                             "frequency": "monthly"}, TODAY)
    result = service.save(session, settings, c, update, ORIGIN)
    assert {ch.field for ch in result.changes} == {"interests", "frequency"}
    assert contacts.interests_of(session, c.id) == ["caregiving", "clinical-trials"]
    assert contacts.subscription(session, c.id, "newsletter").frequency == "monthly"
    events = _events(session, c.id)
    assert [(e.action, e.detail["field"]) for e in events] == [("preferences", "interests"),
                                                                ("preferences", "frequency")]
    assert all(e.source == "preferences" and e.client_ip == "203.0.113.9" and e.user_agent == "pytest-agent"
               for e in events)
    # The same save again changes nothing and records nothing.
    again = service.save(session, settings, c, update, ORIGIN)
    assert again.changes == [] and len(_events(session, c.id)) == 2


def test_leaving_a_list_unsubscribes_it_and_rejoining_starts_a_double_opt_in(session, settings):
    c = make_contact(session, lists={"newsletter": "confirmed", "donor-updates": "confirmed"})
    service.save(session, settings, c, service.PreferencesUpdate(lists={"newsletter": False}), ORIGIN)
    assert contacts.subscription(session, c.id, "newsletter").state == "unsubscribed"
    assert contacts.subscription(session, c.id, "donor-updates").state == "confirmed"

    result = service.save(session, settings, c, service.PreferencesUpdate(lists={"newsletter": True}), ORIGIN)
    # Never straight back to confirmed: pending, and a confirm email waits in the outbox.
    assert contacts.subscription(session, c.id, "newsletter").state == "pending"
    assert result.check_inbox == ["newsletter"]
    [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(result.outbox_ids)))
    assert msg.template == "confirm" and msg.to_address == c.email
    assert [e.action for e in _events(session, c.id)] == ["unsubscribe", "signup"]


def test_joining_another_list_sends_a_confirm_link_for_that_list(session, settings):
    c = make_contact(session, lists={"newsletter": "confirmed"})
    result = service.save(session, settings, c, service.PreferencesUpdate(lists={"volunteer-updates": True}),
                          ORIGIN)
    assert contacts.subscription(session, c.id, "volunteer-updates").state == "pending"
    [msg] = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(result.outbox_ids)))
    token = msg.context["links"]["confirm"].rsplit("/", 1)[1]
    confirmation, _ = service.confirm(session, settings, token, RequestMeta())
    assert confirmation.list_key == "volunteer-updates"
    assert contacts.subscription(session, c.id, "volunteer-updates").state == "confirmed"


def test_volunteer_changes_are_saved_and_shown_to_staff(session, settings):
    c = make_contact(session, lists={"volunteer-updates": "confirmed"})
    vol = _volunteer(session, c)
    update = service.parse_json(session, c, {"volunteer": {"areas": ["office", "events"],
                                                           "availability": ["weekends"],
                                                           "paused_until": "2027-03-01"}}, TODAY)
    service.save(session, settings, c, update, ORIGIN)
    assert volunteers.areas_of(session, vol.id) == ["events", "office"]
    session.refresh(vol)
    assert vol.paused_until == dt.date(2027, 3, 1)
    [event] = session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vol.id,
                                                           VolunteerEvent.actor == "self"))
    assert event.detail == {"areas": ["events", "office"], "paused_until": "2027-03-01"}
    assert {e.detail["field"] for e in _events(session, c.id)} == {"areas", "paused_until"}


@pytest.mark.parametrize(("body", "field"), [
    ({"frequency": "daily"}, "frequency"),
    ({"language": "fr"}, "language"),
    ({"interests": ["astrology"]}, "interests"),
    ({"lists": {"spam": "confirmed"}}, "lists.spam"),
    ({"lists": {"newsletter": "maybe"}}, "lists.newsletter"),
    ({"email": "someone-else@example.org"}, "email"),
    ({"colour": "blue"}, "colour"),
    ({"volunteer": {"areas": ["events"]}}, "volunteer"),
])
def test_bad_fields_are_named(session, body, field):
    c = make_contact(session, lists={"newsletter": "confirmed"})
    with pytest.raises(Invalid) as exc:
        service.parse_json(session, c, body, TODAY)
    assert field in exc.value.fields


def test_pause_date_must_be_in_the_future(session):
    c = make_contact(session)
    _volunteer(session, c)
    for bad in ("2026-11-24", "2020-01-01", "next tuesday", "2030-01-01"):
        with pytest.raises(Invalid) as exc:
            service.parse_json(session, c, {"volunteer": {"paused_until": bad}}, TODAY)
        assert "volunteer.paused_until" in exc.value.fields or "paused_until" in exc.value.fields


def test_unsubscribe_everything_suppresses_and_is_idempotent(session, settings):
    c = make_contact(session, lists={"newsletter": "confirmed", "volunteer-updates": "pending"})
    changes = service.unsubscribe_everything(session, settings, c, ORIGIN)
    assert {ch.list_key for ch in changes if ch.list_key} == {"newsletter", "volunteer-updates"}
    session.refresh(c)
    assert c.status == "unsubscribed"
    assert contacts.suppression_reason(session, c.email_key) == "unsubscribed"
    assert not contacts.is_mailable(session, c.id, "newsletter")
    n = len(_events(session, c.id))
    assert service.unsubscribe_everything(session, settings, c, ORIGIN) == []
    assert len(_events(session, c.id)) == n


def test_unsubscribe_everything_keeps_a_stronger_status(session, settings):
    c = make_contact(session, lists={"newsletter": "confirmed"}, status="bounced")
    service.unsubscribe_everything(session, settings, c, ORIGIN)
    assert session.get(Contact, c.id).status == "bounced"


def test_fresh_link_goes_only_to_known_addresses_and_once_per_window(session, settings):
    c = make_contact(session, email="known@example.org", language="es")
    assert service.send_fresh_link(session, settings, "nobody@example.org", now=1000.0) == []
    [mid] = service.send_fresh_link(session, settings, "KNOWN@example.org", now=1000.0)
    msg = session.get(OutboxMessage, mid)
    assert msg.template == "fresh-link" and msg.language == "es" and msg.contact_id == c.id
    assert set(msg.context["links"]) == {"preferences", "unsubscribe"}
    assert service.send_fresh_link(session, settings, "known@example.org", now=1100.0) == []
    with pytest.raises(Invalid):
        service.send_fresh_link(session, settings, "not an address")
