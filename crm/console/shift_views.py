"""What the opportunity, shift and hours pages show, and how their forms become the domain's bodies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crm.config import Settings
from crm.console.volunteer_views import AREA_LABELS, AVAILABILITY_LABELS, Clock, name_of, rows_of
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.errors import Conflict, Invalid
from crm.volunteers import opportunities as opps
from crm.volunteers import qualifications as quals
from crm.volunteers import shifts as shift_service
from crm.volunteers.models import (
    HoursStatus,
    Opportunity,
    OpportunityResponse,
    Shift,
    ShiftSignup,
    Volunteer,
    VolunteerHours,
)

MATCHES_SHOWN = 100
CANDIDATES_SHOWN = 300
QUEUE_SHOWN = 500


# --- opportunities ----------------------------------------------------------------------------


def response_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(session.execute(select(OpportunityResponse.opportunity_id, func.count())
                                .where(OpportunityResponse.opportunity_id.in_(ids))
                                .group_by(OpportunityResponse.opportunity_id)).tuples().all())


def opportunity_body(data: dict[str, str], qualification_keys: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The opportunity form as the API's body (blank optional dates are left out) and its `requires`."""
    body: dict[str, Any] = {name: data.get(name, "") for name in ("title", "area", "description", "postal_code",
                                                                   "schedule")}
    raw_needed = (data.get("needed") or "").strip()
    body["needed"] = int(raw_needed) if raw_needed.isdigit() else (raw_needed or 1)
    if not isinstance(body["needed"], int):
        raise Invalid.field("needed", "must be a whole number from 1 to 10000")
    body["availability"] = data.get("availability") or None
    for name in ("starts_on", "ends_on"):
        body[name] = data.get(name) or None
    requires = [k for k in qualification_keys if data.get(f"requires_{k}") == "yes"]
    return body, requires


def save_opportunity(session: Session, data: dict[str, str], actor: str, opportunity_id: int | None) -> Opportunity:
    keys = [t.key for t in quals.list_types(session)]
    body, requires = opportunity_body(data, keys)
    opp = opps.create(session, body, actor) if opportunity_id is None else opps.update(session, opportunity_id, body)
    quals.with_requires(session, opp, quals.parse_requires(session, requires), {})
    return opp


def match_reasons(opp: Opportunity, postal_code: str, prefix_length: int) -> list[str]:
    """Why a volunteer in the match list matched: the rules of the match query, in words."""
    prefix = "".join(opp.postal_code.split()).upper()[:prefix_length]
    reasons = [f"Area: {AREA_LABELS.get(opp.area, opp.area)}",
               f"Postal code {postal_code} starts with {prefix}, like {opp.postal_code}"]
    if opp.availability:
        reasons.append(f"Available {AVAILABILITY_LABELS.get(opp.availability, opp.availability).lower()}")
    reasons.append("Active and not paused")
    return reasons


@dataclass(frozen=True)
class Matches:
    total: int
    rows: list[Any]
    reasons: dict[int, list[str]]


def matches(session: Session, settings: Settings, opp: Opportunity) -> Matches:
    stmt = opps.matches_query(settings, opp)
    total = int(session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(Volunteer.id).subquery())) or 0)
    found = list(session.execute(stmt.order_by(Volunteer.id.desc()).limit(MATCHES_SHOWN)).tuples())
    rows = rows_of(session, found)
    reasons = {r.volunteer.id or 0: match_reasons(opp, r.volunteer.postal_code, settings.match_postal_prefix)
               for r in rows}
    return Matches(total, rows, reasons)


# --- shifts -----------------------------------------------------------------------------------


def shift_body(data: dict[str, str]) -> dict[str, Any]:
    """The "Add a shift" form: local times, a capacity, and an optional weekly repeat until a date."""
    raw_cap = (data.get("capacity") or "").strip()
    body: dict[str, Any] = {"capacity": int(raw_cap) if raw_cap.isdigit() else raw_cap or None,
                            "location": data.get("location", ""), "notes": data.get("notes", "")}
    for name in ("starts_at", "ends_at"):
        if data.get(name):
            body[name] = data[name]
    if body["capacity"] is None or not isinstance(body["capacity"], int):
        raise Invalid.field("capacity", "must be a whole number from 1 to 10000")
    until = (data.get("repeat_until") or "").strip()
    if until and body.get("starts_at"):
        try:
            weekday = dt.datetime.fromisoformat(body["starts_at"]).weekday()
        except ValueError:
            raise Invalid.field("starts_at", "must be a date and time like 2026-03-31T09:00") from None
        body["repeat"] = {"weekdays": [weekday], "every_weeks": 1, "until": until}
    return body


def monday_of(raw: str | None, settings: Settings) -> dt.date:
    """The Monday of the week asked for (any day of it), or of this week."""
    try:
        day = dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        day = None
    day = day or utcnow().astimezone(shift_service.zone(settings)).date()
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True)
class CalendarShift:
    shift: Shift
    title: str
    signed_up: int
    waitlisted: int
    offered: int

    @property
    def full(self) -> bool:
        return self.signed_up + self.offered >= self.shift.capacity


def week(session: Session, settings: Settings, monday: dt.date, opportunity_id: int | None
         ) -> list[tuple[dt.date, list[CalendarShift]]]:
    """Seven days from `monday` (local), each with its shifts and their counts: two queries."""
    tz = shift_service.zone(settings)
    start = dt.datetime.combine(monday, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    stmt = (select(Shift, Opportunity.title).join(Opportunity, Opportunity.id == Shift.opportunity_id)
            .where(Shift.starts_at >= start, Shift.starts_at < end))
    if opportunity_id is not None:
        stmt = stmt.where(Shift.opportunity_id == opportunity_id)
    found = list(session.execute(stmt.order_by(Shift.starts_at, Shift.id).limit(2000)).tuples())
    counts = shift_service.counts(session, [s.id for s, _ in found if s.id is not None])
    days: dict[dt.date, list[CalendarShift]] = {monday + dt.timedelta(days=i): [] for i in range(7)}
    for shift, title in found:
        c = counts.get(shift.id or 0, {"signed_up": 0, "waitlisted": 0, "offered": 0})
        days[shift.starts_at.astimezone(tz).date()].append(
            CalendarShift(shift, title, c["signed_up"], c["waitlisted"], c["offered"]))
    return list(days.items())


@dataclass(frozen=True)
class SignupRow:
    signup: ShiftSignup
    name: str
    volunteer_id: int


@dataclass(frozen=True)
class ShiftPage:
    shift: Shift
    opportunity: Opportunity
    counts: dict[str, int]
    signups: list[SignupRow]
    candidates: list[tuple[int, str]]
    started: bool


def shift_page(session: Session, settings: Settings, shift_id: int) -> ShiftPage:
    shift = shift_service.get(session, shift_id)
    opp = shift_service.opportunity(session, shift.opportunity_id)
    count = shift_service.counts(session, [shift_id])[shift_id]
    rows = session.execute(select(ShiftSignup, Contact, Volunteer.id).join(Volunteer, Volunteer.id == ShiftSignup.volunteer_id)
                           .join(Contact, Contact.id == Volunteer.contact_id).where(ShiftSignup.shift_id == shift_id)
                           .order_by(ShiftSignup.position.is_not(None), ShiftSignup.position, ShiftSignup.id)).tuples()
    signups = [SignupRow(s, name_of(c), vid) for s, c, vid in rows]
    taken = {r.volunteer_id for r in signups if r.signup.status in ("confirmed", "waitlisted", "offered")}
    # Whom a coordinator would sign up: the opportunity's matches first (nearby, right area).
    found = session.execute(opps.matches_query(settings, opp).order_by(Contact.first_name, Contact.last_name,
                                                                       Volunteer.id).limit(CANDIDATES_SHOWN)).tuples()
    candidates = [(v.id, f"{name_of(c)} ({c.email})") for v, c in found if v.id not in taken]
    return ShiftPage(shift, opp, count, signups, candidates, shift.starts_at <= utcnow())


def volunteer_for_signup(session: Session, data: dict[str, str]) -> int:
    """The sign-up form names a volunteer from the list, or anyone by email address."""
    address = (data.get("email") or "").strip()
    if address:
        key = contacts.normalize_email(address).key
        vid = session.scalar(select(Volunteer.id).join(Contact, Contact.id == Volunteer.contact_id)
                             .where(Contact.email_key == key))
        if vid is None:
            raise Invalid.field("email", f"no volunteer has the address {address}")
        return int(vid)
    raw = (data.get("volunteer_id") or "").strip()
    if not raw.isdigit():
        raise Invalid.field("volunteer_id", "choose a volunteer or type their email address")
    return int(raw)


def refusal(session: Session, settings: Settings, exc: Conflict, volunteer_name: str) -> str:
    """A sign-up refused (SPEC 11) in plain words: which shift clashes, which qualification is missing."""
    if "clash_shift_id" in exc.fields:
        other = session.get(Shift, int(exc.fields["clash_shift_id"]))
        opp = session.get(Opportunity, other.opportunity_id) if other else None
        if other is not None and opp is not None:
            clock = Clock(settings)
            return (f"{volunteer_name} is not signed up: they are already confirmed on “{opp.title}” on "
                    f"{clock.when(other.starts_at)}–{clock.time(other.ends_at)} (shift {other.id}), which overlaps "
                    f"this shift.")
    type_labels = dict(session.execute(select(quals.QualificationType.key, quals.QualificationType.label)).tuples().all())
    lacking = [f"{type_labels[k]}: {why}" for k, why in exc.fields.items() if k in type_labels]
    if lacking:
        return (f"{volunteer_name} is not signed up: this opportunity requires qualifications they do not hold "
                f"on the shift's date: {'; '.join(lacking)}.")
    return f"{volunteer_name} is not signed up: {exc.message}."


def attendance_body(data: dict[str, str]) -> dict[str, Any]:
    """Attended (with hours, default the shift's length) or did not come."""
    outcome = data.get("outcome")
    if outcome == "no_show":
        return {"status": "no_show"}
    if outcome != "completed":
        raise Invalid.field("outcome", "choose attended or did not come")
    raw = (data.get("hours") or "").strip()
    if not raw:
        return {"status": "completed"}
    try:
        return {"status": "completed", "hours": float(raw)}
    except ValueError:
        raise Invalid.field("hours", "must be a number of hours, like 2.5") from None


# --- the hours queue --------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingHours:
    hours: VolunteerHours
    name: str
    title: str | None


def pending_hours(session: Session) -> list[PendingHours]:
    rows = session.execute(select(VolunteerHours, Contact, Opportunity.title)
                           .join(Volunteer, Volunteer.id == VolunteerHours.volunteer_id)
                           .join(Contact, Contact.id == Volunteer.contact_id)
                           .outerjoin(Shift, Shift.id == VolunteerHours.shift_id)
                           .outerjoin(Opportunity, Opportunity.id == Shift.opportunity_id)
                           .where(VolunteerHours.status == HoursStatus.pending)
                           .order_by(VolunteerHours.date, VolunteerHours.id).limit(QUEUE_SHOWN)).tuples()
    return [PendingHours(h, name_of(c), title) for h, c, title in rows]


def chosen_hours(data: dict[str, str]) -> list[int]:
    """The ticked rows of the queue: fields named hours_<id>."""
    return [int(k.removeprefix("hours_")) for k, v in data.items()
            if k.startswith("hours_") and k.removeprefix("hours_").isdigit() and v == "yes"]
