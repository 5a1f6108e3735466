"""Volunteer hours: logged by staff (approved) or by the volunteer (pending until approved); totals; CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.db import session_scope
from crm.errors import Conflict, Invalid, NotFound
from crm.volunteers.models import HoursStatus, Opportunity, Shift, Volunteer, VolunteerHours
from crm.volunteers.service import get_volunteer, parse_date

STATUSES = [s.value for s in HoursStatus]


def hours_dict(h: VolunteerHours) -> dict[str, Any]:
    return {"id": h.id, "volunteer_id": h.volunteer_id, "shift_id": h.shift_id, "date": h.date.isoformat(),
            "hours": h.hours, "note": h.note, "status": h.status, "logged_by": h.logged_by,
            "reviewed_by": h.reviewed_by, "created_at": h.created_at.isoformat()}


def log(session: Session, volunteer_id: int, data: Any, actor: str, *, by_staff: bool) -> VolunteerHours:
    get_volunteer(session, volunteer_id)
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {n: "unknown field; expected date, hours, shift_id, note"
                              for n in sorted(set(data) - {"date", "hours", "shift_id", "note"})}
    day = None
    try:
        day = parse_date(data.get("date"), "date")
    except Invalid as exc:
        errors.update(exc.fields)
    if day is None and "date" not in errors:
        errors["date"] = "is required"
    elif day is not None and day > dt.date.today() + dt.timedelta(days=1):
        errors["date"] = "hours are logged for days already worked"
    hours = data.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24:
        errors["hours"] = "must be a number of hours above 0 and at most 24"
    shift_id = data.get("shift_id")
    if shift_id is not None and (isinstance(shift_id, bool) or not isinstance(shift_id, int)
                                 or session.get(Shift, shift_id) is None):
        errors["shift_id"] = "must be the id of a shift"
    note = ""
    try:
        note = contacts.clean_text(data.get("note"), "note", max_length=2000, single_line=False)
    except Invalid as exc:
        errors.update(exc.fields)
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    assert day is not None
    row = VolunteerHours(volunteer_id=volunteer_id, shift_id=shift_id, date=day, hours=float(hours), note=note,
                         status=HoursStatus.approved if by_staff else HoursStatus.pending, logged_by=actor,
                         reviewed_by=actor if by_staff else None)
    session.add(row)
    session.flush()
    return row


def review(session: Session, hours_id: int, data: Any, actor: str) -> VolunteerHours:
    if not isinstance(data, dict) or data.get("status") not in (HoursStatus.approved, HoursStatus.rejected):
        raise Invalid.field("status", "must be approved or rejected")
    row = session.get(VolunteerHours, hours_id)
    if row is None:
        raise NotFound(f"no hours record {hours_id}")
    if row.status != HoursStatus.pending and row.status != data["status"]:
        raise Conflict(f"hours record {hours_id} is already {row.status}", fields={"status": f"already {row.status}"})
    row.status, row.reviewed_by = data["status"], actor
    session.add(row)
    session.flush()
    return row


def review_many(session: Session, hours_ids: list[int], status: str, actor: str) -> int:
    """Approve or reject many pending records in one UPDATE; records already reviewed keep their state.

    Returns how many changed, so a double submit of the same queue changes nothing the second time.
    """
    if status not in (HoursStatus.approved, HoursStatus.rejected):
        raise Invalid.field("status", "must be approved or rejected")
    if not hours_ids:
        raise Invalid.field("hours", "choose at least one hours record")
    result = session.execute(update(VolunteerHours)
                             .where(VolunteerHours.id.in_(hours_ids), VolunteerHours.status == HoursStatus.pending)
                             .values(status=status, reviewed_by=actor))
    return int(result.rowcount or 0)


def search(session: Session, status: str | None, volunteer_id: int | None = None, limit: int = 500
           ) -> list[VolunteerHours]:
    if status is not None and status not in STATUSES:
        raise Invalid.field("status", f"must be one of {', '.join(STATUSES)}")
    stmt = select(VolunteerHours)
    if status:
        stmt = stmt.where(VolunteerHours.status == status)
    if volunteer_id is not None:
        stmt = stmt.where(VolunteerHours.volunteer_id == volunteer_id)
    return list(session.scalars(stmt.order_by(VolunteerHours.date.desc(), VolunteerHours.id.desc()).limit(limit)))


def approved_total(session: Session, volunteer_id: int) -> float:
    return float(session.scalar(select(func.coalesce(func.sum(VolunteerHours.hours), 0)).where(
        VolunteerHours.volunteer_id == volunteer_id, VolunteerHours.status == HoursStatus.approved)) or 0)


def _range(start: Any, end: Any) -> tuple[dt.date | None, dt.date | None]:
    a, b = parse_date(start, "from"), parse_date(end, "to")
    if a and b and b < a:
        raise Invalid.field("to", "must not be before from")
    return a, b


def totals(session: Session, by: str, start: Any = None, end: Any = None) -> list[dict[str, Any]]:
    """Approved hours per volunteer, opportunity or month."""
    a, b = _range(start, end)
    month = func.substr(cast(VolunteerHours.date, String), 1, 7)
    key = {"volunteer": VolunteerHours.volunteer_id, "opportunity": Shift.opportunity_id, "month": month}.get(by)
    if key is None:
        raise Invalid.field("by", "must be volunteer, opportunity or month")
    stmt = (select(key, func.sum(VolunteerHours.hours), func.count())
            .select_from(VolunteerHours).outerjoin(Shift, Shift.id == VolunteerHours.shift_id)
            .where(VolunteerHours.status == HoursStatus.approved))
    if a:
        stmt = stmt.where(VolunteerHours.date >= a)
    if b:
        stmt = stmt.where(VolunteerHours.date <= b)
    rows = session.execute(stmt.group_by(key).order_by(key))
    return [{by: k, "hours": round(float(h or 0), 2), "records": n} for k, h, n in rows]


def csv_rows(session: Session, start: Any, end: Any) -> Iterator[str]:
    """Approved and pending hours in a date range, streamed a page at a time (for annual and grant reports)."""
    a, b = _range(start, end)
    stmt = (select(VolunteerHours, Volunteer.contact_id, Opportunity.title)
            .join(Volunteer, Volunteer.id == VolunteerHours.volunteer_id)
            .outerjoin(Shift, Shift.id == VolunteerHours.shift_id)
            .outerjoin(Opportunity, Opportunity.id == Shift.opportunity_id))
    if a:
        stmt = stmt.where(VolunteerHours.date >= a)
    if b:
        stmt = stmt.where(VolunteerHours.date <= b)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "date", "volunteer_id", "contact_id", "hours", "status", "shift_id", "opportunity",
                     "logged_by", "reviewed_by", "note"])
    for h, contact_id, title in session.execute(stmt.order_by(VolunteerHours.date, VolunteerHours.id)
                                                .execution_options(yield_per=1000)):
        writer.writerow([h.id, h.date.isoformat(), h.volunteer_id, contact_id, h.hours, h.status, h.shift_id,
                         title or "", h.logged_by, h.reviewed_by or "", _safe(h.note)])
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _safe(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def csv_stream(settings: Settings, start: Any, end: Any) -> Iterator[str]:
    """The CSV from its own session, so a long download holds no request's connection."""
    _range(start, end)  # bad dates answer 400 before the download starts

    def chunks() -> Iterator[str]:
        with session_scope(settings) as session:
            yield from csv_rows(session, start, end)

    return chunks()
