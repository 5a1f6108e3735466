"""The volunteer's own page: opened by a `volunteer` token, no login; their shifts, open shifts, hours."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import is_postgres, utcnow
from crm.errors import NotFound
from crm.tokens import TokenError, read_token
from crm.volunteers import hours as hours_service
from crm.volunteers import qualifications, signups
from crm.volunteers import shifts as shift_service
from crm.volunteers.models import (
    Opportunity,
    Shift,
    ShiftSignup,
    ShiftStatus,
    SignupStatus,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
)

S = SignupStatus


class LinkProblem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_token(session: Session, settings: Settings, token: str) -> tuple[Volunteer, Contact]:
    try:
        claims = read_token(settings.resolved_secret("secret_key"), token, "volunteer")
    except TokenError as exc:
        raise LinkProblem(exc.reason) from None
    row = session.execute(select(Volunteer, Contact).join(Contact, Contact.id == Volunteer.contact_id)
                          .where(Volunteer.contact_id == claims.contact_id)).tuples().first()
    if row is None:
        raise LinkProblem("malformed")
    return row


def _fitting_opportunities(settings: Settings, vol: Volunteer) -> Any:
    """Opportunities in the volunteer's areas, availability and postal prefix (a few of hundreds)."""
    prefix = (vol.postal_code or "")[: settings.match_postal_prefix]
    stmt = select(Opportunity.id).where(
        exists().where(VolunteerArea.volunteer_id == vol.id, VolunteerArea.area == Opportunity.area),
        or_(Opportunity.availability.is_(None),
            exists().where(VolunteerAvailability.volunteer_id == vol.id,
                           VolunteerAvailability.slot == Opportunity.availability)))
    if prefix:
        stmt = stmt.where(or_(Opportunity.postal_code == "",
                              func.substr(Opportunity.postal_code, 1, len(prefix)) == prefix))
    return stmt


def _open_conditions(vol: Volunteer, now: dt.datetime, shift: Any = Shift) -> list[Any]:
    """A future shift with a free place that the volunteer is not on already."""
    held = (select(func.count()).select_from(ShiftSignup)
            .where(ShiftSignup.shift_id == shift.id, ShiftSignup.status.in_(shift_service.HOLDING))
            .correlate(shift).scalar_subquery())
    return [shift.starts_at > now, shift.status == ShiftStatus.scheduled, held < shift.capacity,
            ~exists().where(ShiftSignup.shift_id == shift.id, ShiftSignup.volunteer_id == vol.id,
                            ShiftSignup.status.in_(signups.ACTIVE)).correlate(shift)]


def open_shifts_query(settings: Settings, vol: Volunteer, now: dt.datetime, limit: int = 20, *,
                      lateral: bool = True) -> Any:
    """The next open shifts that fit, soonest first.

    On PostgreSQL each fitting opportunity gives at most `limit` of its next open shifts through a
    LATERAL join on (opportunity_id, starts_at): a year of shifts is never scanned for a volunteer
    whom few opportunities fit. SQLite (no LATERAL, small installs) filters one scan by start time.
    """
    fitting = _fitting_opportunities(settings, vol)
    if not lateral:
        return (select(Shift, Opportunity).join(Opportunity, Opportunity.id == Shift.opportunity_id)
                .where(Shift.opportunity_id.in_(fitting), *_open_conditions(vol, now))
                .order_by(Shift.starts_at, Shift.id).limit(limit))
    opps = fitting.subquery("fit")
    each = aliased(Shift)
    nxt = (select(each.id.label("shift_id")).where(each.opportunity_id == opps.c.id, *_open_conditions(vol, now, each))
           .order_by(each.starts_at, each.id).limit(limit).lateral("nxt"))
    return (select(Shift, Opportunity).select_from(opps).join(nxt, true())
            .join(Shift, Shift.id == nxt.c.shift_id).join(Opportunity, Opportunity.id == opps.c.id)
            .order_by(Shift.starts_at, Shift.id).limit(limit))


def open_shifts(session: Session, settings: Settings, vol: Volunteer, now: dt.datetime) -> list[tuple[Shift, Opportunity]]:
    assert vol.id is not None
    tz = shift_service.zone(settings)
    out = []
    query = open_shifts_query(settings, vol, now, 60, lateral=is_postgres(session))
    for shift, opp in session.execute(query).tuples():
        if not qualifications.missing(session, vol.id, list(opp.requires or []), shift.starts_at.astimezone(tz).date()):
            out.append((shift, opp))
        if len(out) == 20:
            break
    return out


def upcoming(session: Session, vol: Volunteer, now: dt.datetime) -> list[tuple[ShiftSignup, Shift, Opportunity]]:
    return list(session.execute(
        select(ShiftSignup, Shift, Opportunity).join(Shift, Shift.id == ShiftSignup.shift_id)
        .join(Opportunity, Opportunity.id == Shift.opportunity_id)
        .where(ShiftSignup.volunteer_id == vol.id, ShiftSignup.status.in_(signups.ACTIVE),
               and_(Shift.ends_at > now, Shift.status == ShiftStatus.scheduled))
        .order_by(Shift.starts_at).limit(50)).tuples())


def view(session: Session, settings: Settings, vol: Volunteer, contact: Contact) -> dict[str, Any]:
    assert vol.id is not None
    now = utcnow()
    tz = shift_service.zone(settings)

    def shift_fields(shift: Shift, opp: Opportunity) -> dict[str, Any]:
        start, end = shift.starts_at.astimezone(tz), shift.ends_at.astimezone(tz)
        return {"shift_id": shift.id, "title": opp.title, "location": shift.location, "notes": shift.notes,
                "starts_at": start.isoformat(), "ends_at": end.isoformat(), "date": start.date().isoformat(),
                "starts": start.strftime("%H:%M"), "ends": end.strftime("%H:%M")}

    return {
        "volunteer": {"id": vol.id, "first_name": contact.first_name, "language": contact.language,
                      "status": vol.status, "shift_reminders": vol.shift_reminders},
        "timezone": settings.timezone,
        "upcoming": [{**shift_fields(sh, o), "signup_id": s.id, "status": s.status, "position": s.position,
                      "offer_expires_at": s.offer_expires_at.isoformat() if s.offer_expires_at else None}
                     for s, sh, o in upcoming(session, vol, now)],
        "open_shifts": [shift_fields(sh, o) for sh, o in open_shifts(session, settings, vol, now)],
        "hours": [hours_service.hours_dict(h) for h in hours_service.search(session, None, vol.id, 50)],
        "hours_approved": hours_service.approved_total(session, vol.id),
    }


def own_signup(session: Session, vol: Volunteer, signup_id: int) -> ShiftSignup:
    signup = session.get(ShiftSignup, signup_id)
    if signup is None or signup.volunteer_id != vol.id:
        raise NotFound(f"no sign-up {signup_id}")
    return signup


def cancel_own(session: Session, settings: Settings, vol: Volunteer, signup_id: int) -> list[int]:
    signup = own_signup(session, vol, signup_id)
    shift_service.get(session, signup.shift_id, lock=True)
    signup = signups.get(session, signup_id, lock=True)
    return signups.cancel(session, settings, signup, "self")


def offer(session: Session, settings: Settings, vol: Volunteer, signup_id: int) -> dict[str, Any]:
    """What the offer page shows; changes nothing (mail scanners follow links)."""
    signup = own_signup(session, vol, signup_id)
    shift = shift_service.get(session, signup.shift_id)
    opp = session.get(Opportunity, shift.opportunity_id)
    tz = shift_service.zone(settings)
    live = signup.status == S.offered and signup.offer_expires_at is not None and signup.offer_expires_at > utcnow()
    return {"signup_id": signup.id, "status": signup.status, "live": live, "title": opp.title if opp else "",
            "date": shift.starts_at.astimezone(tz).date().isoformat(),
            "starts": shift.starts_at.astimezone(tz).strftime("%H:%M"),
            "ends": shift.ends_at.astimezone(tz).strftime("%H:%M"), "location": shift.location,
            "expires": signup.offer_expires_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            if signup.offer_expires_at else None,
            # ISO (UTC), for the page to show with Babel in the person's language and CRM_TIMEZONE
            "starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat(),
            "expires_at": signup.offer_expires_at.isoformat() if signup.offer_expires_at else None}
