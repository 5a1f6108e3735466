"""Sign-ups: capacity, waitlist, overlap and qualification rules; offers of freed places; reminders.

Concurrency: a sign-up locks the shift row and then the volunteer row (FOR UPDATE on PostgreSQL;
SQLite's BEGIN IMMEDIATE makes every writer wait its turn), so two sign-ups for one shift count
places one after the other and two sign-ups of one volunteer check overlaps one after the other.
The order (shift, then volunteer) is the same everywhere, so the locks cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from crm.config import Settings
from crm.contacts.models import Contact, ContactStatus
from crm.db import utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.events import service as events
from crm.links import person_links, url_for
from crm.outbox import service as outbox
from crm.volunteers import qualifications
from crm.volunteers import shifts as shift_service
from crm.volunteers.models import (
    Opportunity,
    Shift,
    ShiftSignup,
    ShiftStatus,
    SignupStatus,
    Volunteer,
    VolunteerHours,
    VolunteerStatus,
)
from crm.volunteers.service import person

S = SignupStatus
ACTIVE = (S.confirmed, S.waitlisted, S.offered)


def portal_url(settings: Settings, contact_id: int) -> str:
    return url_for(settings, contact_id, "volunteer")


def signup_dict(signup: ShiftSignup) -> dict[str, Any]:
    return {"id": signup.id, "shift_id": signup.shift_id, "volunteer_id": signup.volunteer_id,
            "status": signup.status, "position": signup.position,
            "offer_expires_at": signup.offer_expires_at.isoformat() if signup.offer_expires_at else None,
            "hours": signup.hours, "created_at": signup.created_at.isoformat()}


def local_today(settings: Settings) -> dt.date:
    return utcnow().astimezone(shift_service.zone(settings)).date()


def of_shift(session: Session, shift_id: int) -> list[ShiftSignup]:
    shift_service.get(session, shift_id)
    return list(session.scalars(select(ShiftSignup).where(ShiftSignup.shift_id == shift_id)
                                .order_by(ShiftSignup.status, ShiftSignup.position, ShiftSignup.id)))


def _lock_volunteer(session: Session, volunteer_id: int) -> Volunteer:
    vol = session.scalars(select(Volunteer).where(Volunteer.id == volunteer_id).with_for_update()
                          .execution_options(populate_existing=True)).first()
    if vol is None:
        raise NotFound(f"no volunteer {volunteer_id}")
    return vol


def _clash(session: Session, volunteer_id: int, shift: Shift) -> int | None:
    """The id of a shift this volunteer is confirmed (or holding an offer) on that overlaps `shift`."""
    return session.scalar(
        select(Shift.id).join(ShiftSignup, ShiftSignup.shift_id == Shift.id)
        .where(ShiftSignup.volunteer_id == volunteer_id, ShiftSignup.status.in_([S.confirmed, S.offered]),
               Shift.id != shift.id, Shift.status == ShiftStatus.scheduled,
               Shift.starts_at < shift.ends_at, Shift.ends_at > shift.starts_at)
        .order_by(Shift.starts_at).limit(1))


def _held(session: Session, shift_id: int) -> int:
    return session.scalar(select(func.count()).select_from(ShiftSignup).where(
        ShiftSignup.shift_id == shift_id, ShiftSignup.status.in_(shift_service.HOLDING))) or 0


def sign_up(session: Session, settings: Settings, shift_id: int, volunteer_id: Any, actor: str
            ) -> tuple[ShiftSignup, list[int]]:
    """Confirm, or waitlist when full. Returns the sign-up and outbox ids to wake."""
    if isinstance(volunteer_id, bool) or not isinstance(volunteer_id, int):
        raise Invalid.field("volunteer_id", "must be a volunteer's id")
    shift = shift_service.get(session, shift_id, lock=True)
    vol = _lock_volunteer(session, volunteer_id)
    now = utcnow()
    tz = shift_service.zone(settings)
    today = now.astimezone(tz).date()
    if shift.status != ShiftStatus.scheduled:
        raise Conflict(f"shift {shift_id} is cancelled", fields={"shift_id": "cancelled"})
    if shift.starts_at <= now:
        raise Conflict(f"shift {shift_id} has already started", fields={"shift_id": "already started"})
    if vol.status != VolunteerStatus.active:
        raise Conflict(f"volunteer {volunteer_id} is {vol.status}; only active volunteers can sign up",
                       fields={"volunteer_id": f"volunteer is {vol.status}"})
    if vol.paused_until is not None and vol.paused_until >= today:
        raise Conflict(f"volunteer {volunteer_id} is paused until {vol.paused_until.isoformat()}",
                       fields={"volunteer_id": f"paused until {vol.paused_until.isoformat()}"})
    existing = session.scalars(select(ShiftSignup).where(ShiftSignup.shift_id == shift_id,
                                                         ShiftSignup.volunteer_id == volunteer_id)).first()
    if existing is not None and existing.status in ACTIVE:
        return existing, []  # signing up twice is the same sign-up
    opp = session.get(Opportunity, shift.opportunity_id)
    assert opp is not None
    lacking = qualifications.missing(session, volunteer_id, list(opp.requires or []), shift.starts_at.astimezone(tz).date())
    if lacking:
        detail = ", ".join(f"{k} ({v})" for k, v in lacking.items())
        raise Conflict(f"missing or expired qualifications: {detail}", fields=lacking)
    other = _clash(session, volunteer_id, shift)
    if other is not None:
        raise Conflict(f"volunteer {volunteer_id} is already confirmed on shift {other}, which overlaps",
                       fields={"shift_id": str(other), "clash_shift_id": str(other)})
    if _held(session, shift_id) < shift.capacity:
        status, position = S.confirmed, None
    else:
        status = S.waitlisted
        position = (session.scalar(select(func.max(ShiftSignup.position)).where(
            ShiftSignup.shift_id == shift_id)) or 0) + 1
    signup = existing or ShiftSignup(shift_id=shift_id, volunteer_id=volunteer_id, created_at=now, status=status,
                                     actor=actor)
    signup.status, signup.position, signup.actor, signup.updated_at = status, position, actor, now
    signup.offer_expires_at = signup.reminder_sent_at = None
    session.add(signup)
    session.flush()
    _tell(session, signup)
    ids: list[int] = []
    if status == S.confirmed:
        ids += remind_if_due(session, settings, signup.id or 0, now)
    return signup, ids


def _tell(session: Session, signup: ShiftSignup) -> None:
    """The volunteer.signup_changed event (SPEC 12), in the same transaction as the change."""
    contact_id = session.scalar(select(Volunteer.contact_id).where(Volunteer.id == signup.volunteer_id))
    events.signup_changed(session, contact_id, signup_id=signup.id or 0, shift_id=signup.shift_id,
                          status=str(signup.status), volunteer_id=signup.volunteer_id)


def get(session: Session, signup_id: int, *, lock: bool = False) -> ShiftSignup:
    stmt = select(ShiftSignup).where(ShiftSignup.id == signup_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    signup = session.scalars(stmt).first()
    if signup is None:
        raise NotFound(f"no sign-up {signup_id}")
    return signup


def change(session: Session, settings: Settings, signup_id: int, data: Any, actor: str
           ) -> tuple[ShiftSignup, list[int]]:
    """Staff mark a sign-up cancelled, completed or no_show (with hours)."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {n: "unknown field; expected status, hours" for n in sorted(set(data) - {"status", "hours"})}
    status = data.get("status")
    if status not in (S.cancelled, S.completed, S.no_show):
        errors["status"] = "must be cancelled, completed or no_show"
    hours = data.get("hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24):
        errors["hours"] = "must be a number of hours above 0 and at most 24"
    if hours is not None and status != S.completed and "status" not in errors:
        errors["hours"] = "hours go with status completed"
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    first = get(session, signup_id)
    shift = shift_service.get(session, first.shift_id, lock=True)
    signup = get(session, signup_id, lock=True)
    if status == S.cancelled:
        return signup, cancel(session, settings, signup, actor)
    if signup.status not in (S.confirmed, S.completed, S.no_show):
        raise Conflict(f"sign-up {signup_id} is {signup.status}; only a confirmed place can be marked {status}",
                       fields={"status": f"sign-up is {signup.status}"})
    signup.status, signup.updated_at, signup.actor = status, utcnow(), actor
    if status == S.completed:
        tz = shift_service.zone(settings)
        worked = float(hours) if hours is not None else round((shift.ends_at - shift.starts_at).total_seconds() / 3600, 2)
        signup.hours = worked
        row = session.scalars(select(VolunteerHours).where(VolunteerHours.signup_id == signup.id)).first()
        row = row or VolunteerHours(volunteer_id=signup.volunteer_id, shift_id=shift.id, signup_id=signup.id,
                                    date=shift.starts_at.astimezone(tz).date(), hours=worked, logged_by=actor)
        row.hours, row.status, row.reviewed_by = worked, "approved", actor
        session.add(row)
    else:
        signup.hours = None
        session.execute(update(VolunteerHours).where(VolunteerHours.signup_id == signup.id)
                        .values(status="rejected", reviewed_by=actor))
    session.add(signup)
    session.flush()
    _tell(session, signup)
    return signup, []


def cancel(session: Session, settings: Settings, signup: ShiftSignup, actor: str) -> list[int]:
    """Cancel (the caller holds the shift lock); a freed place goes to the first on the waitlist."""
    if signup.status == S.cancelled:
        return []
    if signup.status not in ACTIVE:
        raise Conflict(f"sign-up {signup.id} is {signup.status} and cannot be cancelled",
                       fields={"status": f"sign-up is {signup.status}"})
    signup.status, signup.position, signup.offer_expires_at = S.cancelled, None, None
    signup.updated_at, signup.actor = utcnow(), actor
    session.add(signup)
    session.flush()
    _tell(session, signup)
    return offer_places(session, settings, signup.shift_id)


def offer_places(session: Session, settings: Settings, shift_id: int, now: dt.datetime | None = None) -> list[int]:
    """Offer each free place to the next waitlisted volunteer (the caller holds the shift lock)."""
    shift = session.get(Shift, shift_id)
    if shift is None or shift.status != ShiftStatus.scheduled:
        return []
    now = now or utcnow()
    if shift.starts_at <= now:
        return []
    ids: list[int] = []
    free = shift.capacity - _held(session, shift_id)
    while free > 0:
        nxt = session.scalars(select(ShiftSignup).where(ShiftSignup.shift_id == shift_id,
                                                        ShiftSignup.status == S.waitlisted)
                              .order_by(ShiftSignup.position, ShiftSignup.id).limit(1)).first()
        if nxt is None:
            break
        nxt.status = S.offered
        nxt.offer_expires_at = min(now + dt.timedelta(hours=settings.waitlist_offer_hours), shift.starts_at)
        nxt.updated_at = now
        session.add(nxt)
        session.flush()
        _tell(session, nxt)
        mid = _email(session, settings, "shift-offer", nxt, shift,
                     dedupe=f"shift-offer:{nxt.id}:{nxt.offer_expires_at.isoformat()}")
        ids += [mid] if mid else []
        free -= 1
    return ids


def accept_offer(session: Session, settings: Settings, signup_id: int, contact_id: int
                 ) -> tuple[ShiftSignup, list[int]]:
    """Take an offered place (the offer page's button); a shift inside the reminder window is reminded at once."""
    first = get(session, signup_id)
    shift_service.get(session, first.shift_id, lock=True)
    signup = get(session, signup_id, lock=True)
    vol = _lock_volunteer(session, signup.volunteer_id)
    if vol.contact_id != contact_id:
        raise NotFound(f"no sign-up {signup_id}")
    if signup.status == S.confirmed:
        return signup, []
    if signup.status != S.offered or signup.offer_expires_at is None or signup.offer_expires_at <= utcnow():
        raise Conflict("this offer has lapsed; the place went to the next person waiting",
                       fields={"offer": "lapsed"})
    signup.status, signup.offer_expires_at, signup.position, signup.updated_at = S.confirmed, None, None, utcnow()
    session.add(signup)
    session.flush()
    _tell(session, signup)
    return signup, remind_if_due(session, settings, signup_id, utcnow())


def lapse_offers(session: Session, settings: Settings, now: dt.datetime | None = None, limit: int = 200
                 ) -> tuple[list[int], bool]:
    """The beat sweep: offers not taken in time pass to the next in line. Idempotent."""
    now = now or utcnow()
    due = list(session.scalars(select(ShiftSignup.shift_id).where(
        ShiftSignup.status == S.offered, ShiftSignup.offer_expires_at <= now).distinct().limit(limit)))
    ids: list[int] = []
    for shift_id in due:
        shift_service.get(session, shift_id, lock=True)
        session.execute(update(ShiftSignup).where(ShiftSignup.shift_id == shift_id, ShiftSignup.status == S.offered,
                                                  ShiftSignup.offer_expires_at <= now)
                        .values(status=S.offer_lapsed, updated_at=now))
        ids += offer_places(session, settings, shift_id, now)
    return ids, len(due) == limit


# --- reminders --------------------------------------------------------------------------------


def remind_if_due(session: Session, settings: Settings, signup_id: int, now: dt.datetime) -> list[int]:
    """Claim this sign-up's reminder (conditional UPDATE) when its shift is within the window."""
    row = session.execute(select(ShiftSignup, Shift, Volunteer).join(Shift, Shift.id == ShiftSignup.shift_id)
                          .join(Volunteer, Volunteer.id == ShiftSignup.volunteer_id)
                          .where(ShiftSignup.id == signup_id)).tuples().first()
    if row is None:
        return []
    signup, shift, vol = row
    window = now + dt.timedelta(hours=settings.shift_reminder_hours)
    if (signup.status != S.confirmed or not vol.shift_reminders or shift.status != ShiftStatus.scheduled
            or not now < shift.starts_at <= window):
        return []
    claimed = session.execute(update(ShiftSignup).where(ShiftSignup.id == signup_id,
                                                        ShiftSignup.reminder_sent_at.is_(None))
                              .values(reminder_sent_at=now)).rowcount == 1
    if not claimed:
        return []
    mid = _email(session, settings, "shift-reminder", signup, shift,
                 dedupe=f"shift-reminder:{signup_id}:{shift.starts_at.isoformat()}")
    return [mid] if mid else []


def reminder_sweep(session: Session, settings: Settings, now: dt.datetime | None = None, limit: int = 1000
                   ) -> tuple[list[int], bool]:
    """Every confirmed sign-up whose shift starts within CRM_SHIFT_REMINDER_HOURS and was not reminded."""
    now = now or utcnow()
    window = now + dt.timedelta(hours=settings.shift_reminder_hours)
    due = list(session.scalars(
        select(ShiftSignup.id).join(Shift, Shift.id == ShiftSignup.shift_id)
        .join(Volunteer, Volunteer.id == ShiftSignup.volunteer_id)
        .where(Shift.starts_at > now, Shift.starts_at <= window, Shift.status == ShiftStatus.scheduled,
               ShiftSignup.status == S.confirmed, ShiftSignup.reminder_sent_at.is_(None),
               Volunteer.shift_reminders.is_(True))
        .order_by(ShiftSignup.id).limit(limit)))
    ids: list[int] = []
    for signup_id in due:
        ids += remind_if_due(session, settings, signup_id, now)
    return ids, len(due) == limit


# --- emails -----------------------------------------------------------------------------------


def email_context(session: Session, settings: Settings, contact: Contact, shift: Shift,
                  signup: ShiftSignup | None = None) -> dict[str, Any]:
    assert contact.id is not None
    tz = shift_service.zone(settings)
    opp = session.get(Opportunity, shift.opportunity_id)
    portal = portal_url(settings, contact.id)
    links = {**person_links(settings, contact.id), "volunteer": portal}
    if signup is not None:
        links["accept"] = f"{portal}/offers/{signup.id}"
        links["cancel"] = f"{portal}/signups/{signup.id}/cancel"
    local_start, local_end = shift.starts_at.astimezone(tz), shift.ends_at.astimezone(tz)
    return {"contact": person(contact), "links": links,
            "shift": {"id": shift.id, "title": opp.title if opp else "", "location": shift.location,
                      "notes": shift.notes, "date": local_start.date().isoformat(),
                      # Templates format these with Babel in the person's language (crm.mail.wording).
                      "starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat(),
                      "starts": local_start.strftime("%H:%M"), "ends": local_end.strftime("%H:%M"),
                      "timezone": settings.timezone},
            "offer_expires_at": (signup.offer_expires_at.isoformat()
                                 if signup is not None and signup.offer_expires_at else None)}


def _email(session: Session, settings: Settings, template: str, signup: ShiftSignup, shift: Shift, *,
           dedupe: str | None) -> int | None:
    vol = session.get(Volunteer, signup.volunteer_id)
    contact = session.get(Contact, vol.contact_id) if vol else None
    if contact is None or contact.email is None or contact.status in (ContactStatus.erased, ContactStatus.bounced):
        return None
    ctx = email_context(session, settings, contact, shift, signup)
    return outbox.queue(session, template, contact.email, ctx, contact_id=contact.id, language=contact.language,
                        dedupe_key=dedupe)


def tell_people_on(session: Session, settings: Settings, shift: Shift, news: str) -> list[int]:
    """A changed or cancelled shift: email everyone confirmed, offered or waitlisted on it."""
    signups = list(session.scalars(select(ShiftSignup).where(ShiftSignup.shift_id == shift.id,
                                                             ShiftSignup.status.in_(ACTIVE))))
    stamp = shift.updated_at.isoformat()
    ids = [_email(session, settings, f"shift-{news}", s, shift, dedupe=f"shift-{news}:{s.id}:{stamp}")
           for s in signups]
    return [i for i in ids if i]
