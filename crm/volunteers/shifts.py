"""Shifts on opportunities: one-off or repeating, entered and shown in CRM_TIMEZONE, stored in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.db import utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.volunteers.models import Opportunity, Shift, ShiftSignup, ShiftStatus, SignupStatus
from crm.volunteers.service import parse_date

# Sign-ups that hold one of the shift's places.
HOLDING = (SignupStatus.confirmed, SignupStatus.offered, SignupStatus.completed, SignupStatus.no_show)
FIELDS = ("starts_at", "ends_at", "capacity", "location", "notes", "repeat", "status")
MAX_OCCURRENCES = 1000


def zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.timezone)


def parse_local(value: Any, name: str, tz: ZoneInfo) -> dt.datetime:
    """An ISO time; one without an offset is read as CRM_TIMEZONE local time. Returns UTC."""
    if not isinstance(value, str):
        raise Invalid.field(name, "must be a date and time like 2026-03-31T09:00")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Invalid.field(name, f"must be a date and time like 2026-03-31T09:00, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(dt.UTC)


def local_iso(moment: dt.datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat()


def _parse_repeat(value: Any, errors: dict[str, str]) -> tuple[list[int], int, dt.date] | None:
    if not isinstance(value, dict):
        errors["repeat"] = "must be an object {weekdays, every_weeks, until}"
        return None
    weekdays = value.get("weekdays")
    if (not isinstance(weekdays, list) or not weekdays
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays)):
        errors["repeat.weekdays"] = "must be a list of days, 0 (Monday) to 6 (Sunday)"
    every = value.get("every_weeks", 1)
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 52:
        errors["repeat.every_weeks"] = "must be a whole number from 1 to 52"
    try:
        until = parse_date(value.get("until"), "repeat.until")
    except Invalid as exc:
        errors.update(exc.fields)
        return None
    if until is None:
        errors["repeat.until"] = "is required: the last day (included)"
    extra = sorted(set(value) - {"weekdays", "every_weeks", "until"})
    for name in extra:
        errors[f"repeat.{name}"] = "unknown field; expected weekdays, every_weeks, until"
    if any(k.startswith("repeat") for k in errors):
        return None
    assert until is not None
    return sorted(set(weekdays)), every, until  # type: ignore[arg-type]


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    return contacts.clean_text(data.get(name), name, max_length=limit, single_line=name == "location")


def _times(data: dict[str, Any], tz: ZoneInfo, partial: bool, out: dict[str, Any], errors: dict[str, str]) -> None:
    for name in ("starts_at", "ends_at"):
        if name in data:
            try:
                out[name] = parse_local(data[name], name, tz)
            except Invalid as exc:
                errors.update(exc.fields)
        elif not partial:
            errors[name] = "is required"
    starts, ends = out.get("starts_at"), out.get("ends_at")
    if starts and ends and ends <= starts:
        errors["ends_at"] = "must be after starts_at"


def _capacity_and_text(data: dict[str, Any], partial: bool, out: dict[str, Any], errors: dict[str, str]) -> None:
    if "capacity" in data:
        cap = data["capacity"]
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 10000:
            errors["capacity"] = "must be a whole number from 1 to 10000"
        else:
            out["capacity"] = cap
    elif not partial:
        errors["capacity"] = "is required"
    for name, limit in (("location", 300), ("notes", 2000)):
        if name in data:
            try:
                out[name] = _text(data, name, limit)
            except Invalid as exc:
                errors.update(exc.fields)


def _status_and_repeat(data: dict[str, Any], partial: bool, out: dict[str, Any], errors: dict[str, str]) -> None:
    if "status" in data:
        if not partial:
            errors["status"] = "a new shift is scheduled; cancel it later"
        elif data["status"] not in (ShiftStatus.scheduled, ShiftStatus.cancelled):
            errors["status"] = "must be scheduled or cancelled"
        else:
            out["status"] = data["status"]
    if "repeat" in data:
        if partial:
            errors["repeat"] = "repeat applies when creating shifts"
        elif data["repeat"] is not None:
            out["repeat"] = _parse_repeat(data["repeat"], errors)


def parse_shift(data: Any, tz: ZoneInfo, *, partial: bool) -> dict[str, Any]:
    """Validate a shift body; every bad field is named at once."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {name: f"unknown field; expected any of {', '.join(FIELDS)}"
                              for name in sorted(set(data) - set(FIELDS))}
    out: dict[str, Any] = {}
    _times(data, tz, partial, out, errors)
    _capacity_and_text(data, partial, out, errors)
    _status_and_repeat(data, partial, out, errors)
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


def occurrences(starts: dt.datetime, ends: dt.datetime, tz: ZoneInfo, weekdays: list[int], every: int,
                until: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each occurrence keeps the first one's local wall-clock times, across daylight-saving changes."""
    local_start, local_end = starts.astimezone(tz), ends.astimezone(tz)
    first_day = local_start.date()
    span_days = (local_end.date() - first_day).days
    week0 = first_day - dt.timedelta(days=first_day.weekday())
    out: list[tuple[dt.datetime, dt.datetime]] = []
    day = first_day
    while day <= until:
        if day.weekday() in weekdays and ((day - week0).days // 7) % every == 0:
            s = dt.datetime.combine(day, local_start.time(), tzinfo=tz)
            e = dt.datetime.combine(day + dt.timedelta(days=span_days), local_end.time(), tzinfo=tz)
            out.append((s.astimezone(dt.UTC), e.astimezone(dt.UTC)))
            if len(out) > MAX_OCCURRENCES:
                raise Invalid.field("repeat.until", f"would create more than {MAX_OCCURRENCES} shifts")
        day += dt.timedelta(days=1)
    return out


def opportunity(session: Session, opportunity_id: int) -> Opportunity:
    opp = session.get(Opportunity, opportunity_id)
    if opp is None:
        raise NotFound(f"no opportunity {opportunity_id}")
    return opp


def create(session: Session, settings: Settings, opportunity_id: int, data: Any, actor: str) -> list[Shift]:
    opportunity(session, opportunity_id)
    tz = zone(settings)
    fields = parse_shift(data, tz, partial=False)
    repeat = fields.pop("repeat", None)
    times = ([(fields["starts_at"], fields["ends_at"])] if repeat is None
             else occurrences(fields["starts_at"], fields["ends_at"], tz, *repeat))
    if not times:
        raise Invalid.field("repeat.weekdays", "no day between starts_at and until falls on these weekdays")
    now = utcnow()
    base = {k: v for k, v in fields.items() if k not in ("starts_at", "ends_at")}
    made = [Shift(opportunity_id=opportunity_id, starts_at=s, ends_at=e, created_by=actor, created_at=now,
                  updated_at=now, **base) for s, e in times]
    session.add_all(made)
    session.flush()
    return made


def get(session: Session, shift_id: int, *, lock: bool = False) -> Shift:
    stmt = select(Shift).where(Shift.id == shift_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    shift = session.scalars(stmt).first()
    if shift is None:
        raise NotFound(f"no shift {shift_id}")
    return shift


def counts(session: Session, shift_ids: list[int]) -> dict[int, dict[str, int]]:
    """{shift_id: {signed_up, waitlisted, held}} in one grouped query."""
    if not shift_ids:
        return {}
    s = ShiftSignup.status
    rows = session.execute(
        select(ShiftSignup.shift_id,
               func.sum(case((s.in_([SignupStatus.confirmed, SignupStatus.completed, SignupStatus.no_show]), 1),
                             else_=0)),
               func.sum(case((s == SignupStatus.waitlisted, 1), else_=0)),
               func.sum(case((s == SignupStatus.offered, 1), else_=0)))
        .where(ShiftSignup.shift_id.in_(shift_ids)).group_by(ShiftSignup.shift_id))
    out = {i: {"signed_up": 0, "waitlisted": 0, "offered": 0} for i in shift_ids}
    for sid, signed, waiting, offered in rows:
        out[sid] = {"signed_up": int(signed or 0), "waitlisted": int(waiting or 0), "offered": int(offered or 0)}
    return out


def shift_dict(shift: Shift, tz: ZoneInfo, count: dict[str, int] | None = None) -> dict[str, Any]:
    c = count or {"signed_up": 0, "waitlisted": 0, "offered": 0}
    return {
        "id": shift.id, "opportunity_id": shift.opportunity_id,
        "starts_at": local_iso(shift.starts_at, tz), "ends_at": local_iso(shift.ends_at, tz),
        "starts_at_utc": shift.starts_at.isoformat(), "ends_at_utc": shift.ends_at.isoformat(),
        "capacity": shift.capacity, "location": shift.location, "notes": shift.notes, "status": shift.status,
        "signed_up": c["signed_up"], "waitlisted": c["waitlisted"], "offered": c["offered"],
        "remaining": max(0, shift.capacity - c["signed_up"] - c["offered"]),
    }


def dicts(session: Session, settings: Settings, shifts: list[Shift]) -> list[dict[str, Any]]:
    tz = zone(settings)
    by_id = counts(session, [s.id for s in shifts if s.id is not None])
    return [shift_dict(s, tz, by_id.get(s.id or 0)) for s in shifts]


def for_opportunity(session: Session, opportunity_id: int, after: dt.datetime | None = None) -> list[Shift]:
    opportunity(session, opportunity_id)
    stmt = select(Shift).where(Shift.opportunity_id == opportunity_id)
    if after is not None:
        stmt = stmt.where(Shift.starts_at >= after)
    return list(session.scalars(stmt.order_by(Shift.starts_at, Shift.id).limit(1000)))


def update(session: Session, settings: Settings, shift_id: int, data: Any) -> tuple[Shift, str | None]:
    """Change a shift; returns it and what the people on it must hear ("changed", "cancelled" or None)."""
    shift = get(session, shift_id, lock=True)
    fields = parse_shift(data, zone(settings), partial=True)
    if shift.status == ShiftStatus.cancelled and fields.get("status") != ShiftStatus.cancelled and fields:
        raise Conflict(f"shift {shift_id} is cancelled", fields={"status": "cancelled"})
    starts, ends = fields.get("starts_at", shift.starts_at), fields.get("ends_at", shift.ends_at)
    if ends <= starts:
        raise Invalid.field("ends_at", "must be after starts_at")
    if "capacity" in fields:
        held = counts(session, [shift_id])[shift_id]
        if fields["capacity"] < held["signed_up"] + held["offered"]:
            raise Conflict(f"{held['signed_up'] + held['offered']} places are taken; capacity cannot go below",
                           fields={"capacity": "below the places already taken"})
    news: str | None = None
    if fields.get("status") == ShiftStatus.cancelled and shift.status != ShiftStatus.cancelled:
        news = "cancelled"
    elif any(k in fields and getattr(shift, k) != fields[k] for k in ("starts_at", "ends_at", "location")):
        news = "changed"
    for key, value in fields.items():
        setattr(shift, key, value)
    if news == "changed":
        # A new time is a new reminder.
        session.execute(ShiftSignup.__table__.update().where(ShiftSignup.shift_id == shift_id)
                        .values(reminder_sent_at=None))
    shift.updated_at = utcnow()
    session.add(shift)
    session.flush()
    return shift, news
