"""Segment conditions on volunteers' shifts and hours: served recently, hours over N (one query)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.errors import Invalid
from crm.segments import service as segments
from crm.volunteers.models import Opportunity, Shift, ShiftSignup, Volunteer, VolunteerHours
from tests.factories import make_volunteer


def _contacts(session, rules) -> set[int]:
    return set(session.scalars(select(Contact.id).where(segments.matching(rules))))


def test_served_within_days_and_hours_over(session):
    now = dt.datetime.now(dt.UTC)
    recent, old, logger, idle = (make_volunteer(session, email=f"s{i}@example.org") for i in range(4))
    opp = Opportunity(title="Driver", area="transport-to-treatment", postal_code="30301")
    session.add(opp)
    session.flush()
    for vol, days_ago, hours in ((recent, 10, 6.0), (old, 200, 12.0)):
        shift = Shift(opportunity_id=opp.id, starts_at=now - dt.timedelta(days=days_ago, hours=6),
                      ends_at=now - dt.timedelta(days=days_ago), capacity=3)
        session.add(shift)
        session.flush()
        session.add(ShiftSignup(shift_id=shift.id, volunteer_id=vol.id, status="completed", hours=hours, actor="t"))
        session.add(VolunteerHours(volunteer_id=vol.id, shift_id=shift.id, date=shift.starts_at.date(), hours=hours,
                                   status="approved", logged_by="t"))
    session.add(VolunteerHours(volunteer_id=logger.id, date=dt.date.today(), hours=3, status="approved", logged_by="t"))
    session.add(VolunteerHours(volunteer_id=idle.id, date=dt.date.today(), hours=40, status="pending", logged_by="self"))
    session.flush()
    cid = {v.id: v.contact_id for v in session.scalars(select(Volunteer))}
    assert _contacts(session, {"volunteer": {"served_within_days": 90}}) == {cid[recent.id], cid[logger.id]}
    assert _contacts(session, {"volunteer": {"hours_over": 5}}) == {cid[recent.id], cid[old.id]}
    assert _contacts(session, {"volunteer": {"hours_over": 10, "status": "active"}}) == {cid[old.id]}
    lapsed = {"all": [{"volunteer": {"hours_over": 0}}, {"not": {"volunteer": {"served_within_days": 90}}}]}
    assert _contacts(session, lapsed) == {cid[old.id]}  # to re-engage: served before, not lately


@pytest.mark.parametrize(("rules", "path"), [
    ({"volunteer": {"served_within_days": -1}}, "volunteer.served_within_days"),
    ({"volunteer": {"hours_over": "ten"}}, "volunteer.hours_over"),
    ({"volunteer": {"hours_under": 3}}, "volunteer.hours_under"),
])
def test_bad_conditions_name_the_path(rules, path):
    with pytest.raises(Invalid) as err:
        segments.validate_rules(rules)
    assert f"rules.{path}" in err.value.fields
