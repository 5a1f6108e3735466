"""Opportunities: matching rules, notify once per volunteer, the "I'm interested" link."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import func, select

from crm.campaigns import invitations
from crm.campaigns.models import Campaign, Delivery
from crm.errors import Conflict, Invalid
from crm.volunteers import opportunities as opps
from crm.volunteers.models import OpportunityResponse
from tests.factories import make_volunteer
from tests.helpers import html_of, link_path, text_of, to
from tests.volunteers.invites import send_invitations

DRIVERS = {"title": "Drive patients to treatment", "area": "transport-to-treatment", "postal_code": "30309",
           "needed": 3, "schedule": "Tuesdays 9-12", "description": "Atlanta clinic runs."}


def _opp(session, **overrides):
    return opps.create(session, {**DRIVERS, **overrides}, "coord@staff.example.org")


def _match_ids(session, settings, opp):
    rows, _ = opps.matches(session, settings, opp.id, None, 100)
    return {v.id for v, _ in rows}


def test_matching_rules(session, settings):
    opp = _opp(session)
    fits = make_volunteer(session, postal_code="30301")
    spaced = make_volunteer(session, postal_code=" 303 12")  # spaces and case do not matter
    other_area = make_volunteer(session, areas=["events"])
    far = make_volunteer(session, postal_code="94110")
    short = make_volunteer(session, postal_code="30")  # shares less than the prefix
    interested = make_volunteer(session, status="interested")
    onboarding = make_volunteer(session, status="onboarding")
    paused = make_volunteer(session, status="paused")
    inactive = make_volunteer(session, status="inactive")
    self_paused = make_volunteer(session, paused_until=dt.date.today() + dt.timedelta(days=10))
    pause_over = make_volunteer(session, paused_until=dt.date.today() - dt.timedelta(days=1))
    ids = _match_ids(session, settings, opp)
    assert ids == {fits.id, spaced.id, pause_over.id}
    for vol in (other_area, far, short, interested, onboarding, paused, inactive, self_paused):
        assert vol.id not in ids


def test_availability_must_fit_when_the_opportunity_names_one(session, settings):
    weekend = make_volunteer(session, availability=["weekends"])
    evenings = make_volunteer(session, availability=["weekday-evenings", "weekday-daytime"])
    assert _match_ids(session, settings, _opp(session)) == {weekend.id, evenings.id}
    assert _match_ids(session, settings, _opp(session, availability="weekday-evenings")) == {evenings.id}


def test_prefix_length_is_configurable(session, settings):
    near = make_volunteer(session, postal_code="30201")
    opp = _opp(session)
    assert _match_ids(session, settings, opp) == set()
    wide = settings.model_copy(update={"match_postal_prefix": 2})
    assert _match_ids(session, wide, opp) == {near.id}


def test_match_paused_until_today_is_still_paused(session, settings):
    with time_machine.travel(dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC), tick=False):
        make_volunteer(session, paused_until=dt.date(2026, 5, 4))
        back = make_volunteer(session, paused_until=dt.date(2026, 5, 3))
        assert _match_ids(session, settings, _opp(session)) == {back.id}


@pytest.mark.parametrize(("body", "field"), [
    ({"title": ""}, "title"),
    ({"area": "juggling"}, "area"),
    ({"needed": 0}, "needed"),
    ({"needed": "3"}, "needed"),
    ({"starts_on": "2026-05-02", "ends_on": "2026-05-01"}, "ends_on"),
    ({"starts_on": "soon"}, "starts_on"),
    ({"availability": "nights"}, "availability"),
    ({"title": "a\r\nBcc: x@example.org"}, "title"),
    ({"price": 3}, "price"),
])
def test_bad_opportunity_fields_are_named(session, body, field):
    with pytest.raises(Invalid) as err:
        opps.create(session, {**DRIVERS, **body}, "coord@staff.example.org")
    assert field in err.value.fields


def test_notify_mails_mailable_matches_once(session, settings):
    opp = _opp(session, starts_on="2030-06-02", ends_on="2030-08-25")
    make_volunteer(session, email="ana@example.org", first_name="Ana")
    make_volunteer(session, email="unsub@example.org", lists={"volunteer-updates": "unsubscribed"})
    make_volunteer(session, email="far@example.org", postal_code="94110")
    first = invitations.notify(session, settings, opp.id, "coord@staff.example.org")
    assert first.queued == 1 and first.campaign_id
    again = invitations.notify(session, settings, opp.id, "coord@staff.example.org")
    assert (again.queued, again.campaign_id) == (0, None)

    make_volunteer(session, email="late@example.org")  # began to match after the first notify
    assert invitations.notify(session, settings, opp.id, "coord@staff.example.org").queued == 1
    session.commit()
    messages = send_invitations(settings)
    assert sorted(str(m["To"]) for m in messages) == ["ana@example.org", "late@example.org"]
    [msg] = to(messages, "ana@example.org")
    assert msg["Subject"] == "Volunteer opportunity: Drive patients to treatment"
    body = text_of(msg)
    assert "Hello Ana" in body and "Tuesdays 9-12 (June 2, 2030 – August 25, 2030)" in body and "/respond/" in body
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert session.scalar(select(func.count()).select_from(Delivery)) == 2
    assert session.scalar(select(func.count()).select_from(Campaign)) == 2


def test_invitation_in_spanish_escapes_what_staff_typed(session, settings):
    opp = _opp(session, title="Conductores <b>urgente</b>", description="Traiga {{ 7*7 }} ganas")
    make_volunteer(session, email="lu@example.org", language="es")
    invitations.notify(session, settings, opp.id, "coord@staff.example.org")
    session.commit()
    [msg] = to(send_invitations(settings), "lu@example.org")
    assert msg["Subject"].startswith("Oportunidad de voluntariado") and "Me interesa" in text_of(msg)
    assert "&lt;b&gt;urgente" in html_of(msg)
    assert "Traiga {{ 7*7 }} ganas" in text_of(msg)  # text, never a template


def test_respond_is_recorded_once(session, settings):
    opp = _opp(session)
    vol = make_volunteer(session, email="ana@example.org")
    invitations.notify(session, settings, opp.id, "coord@staff.example.org")
    session.commit()
    token = link_path(to(send_invitations(settings), "ana@example.org")[0], "respond").removeprefix("/respond/")
    assert not invitations.invitation_from_token(session, settings, token).responded
    invitations.respond(session, settings, token)
    invitations.respond(session, settings, token)
    assert session.scalar(select(func.count()).select_from(OpportunityResponse)) == 1
    [resp] = opps.responses(session, opp.id)
    assert resp["volunteer_id"] == vol.id and resp["email"] == "ana@example.org"


def test_respond_token_for_another_purpose_or_tampered_is_refused(session, settings):
    from crm.links import token_for

    opp = _opp(session)
    vol = make_volunteer(session)
    prefs = token_for(settings, vol.contact_id, "preferences", extra=str(opp.id))
    with pytest.raises(invitations.LinkProblem) as err:
        invitations.respond(session, settings, prefs)
    assert err.value.reason == "wrong-purpose"
    good = invitations.respond_url(settings, vol.contact_id, opp.id).rsplit("/", 1)[1]
    with pytest.raises(invitations.LinkProblem):
        invitations.respond(session, settings, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))


def test_an_ended_opportunity_invites_nobody(session, settings):
    make_volunteer(session)
    opp = _opp(session, starts_on="2026-01-05", ends_on="2026-01-30")
    with time_machine.travel(dt.datetime(2026, 2, 1, tzinfo=dt.UTC), tick=False), pytest.raises(Conflict):
        invitations.notify(session, settings, opp.id, "coord@staff.example.org")
