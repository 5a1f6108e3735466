"""Qualification types (with validity) and each volunteer's verified qualifications."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.db import insert_ignore, utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.volunteers.models import QualificationType, Volunteer, VolunteerQualification
from crm.volunteers.service import get_volunteer, parse_date

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")


def type_dict(t: QualificationType) -> dict[str, Any]:
    return {"id": t.id, "key": t.key, "label": t.label, "valid_days": t.valid_days}


def list_types(session: Session) -> list[QualificationType]:
    return list(session.scalars(select(QualificationType).order_by(QualificationType.key)))


def create_type(session: Session, data: Any) -> QualificationType:
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {n: "unknown field; expected key, label, valid_days"
                              for n in sorted(set(data) - {"key", "label", "valid_days"})}
    key = data.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        errors["key"] = "must be lower-case letters, digits and dashes, like drivers-licence"
    label = ""
    try:
        label = contacts.clean_text(data.get("label"), "label", max_length=200)
    except Invalid as exc:
        errors.update(exc.fields)
    if not label and "label" not in errors:
        errors["label"] = "is required"
    days = data.get("valid_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500):
        errors["valid_days"] = "must be a whole number of days from 1 to 36500, or null for no expiry"
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    if not insert_ignore(session, QualificationType,
                         {"key": key, "label": label, "valid_days": days, "created_at": utcnow()}, ["key"]):
        raise Conflict(f"qualification type {key!r} exists", fields={"key": "already exists"})
    return session.scalars(select(QualificationType).where(QualificationType.key == key)).one()


def known_keys(session: Session, keys: list[str]) -> list[str]:
    return list(session.scalars(select(QualificationType.key).where(QualificationType.key.in_(keys))))


def parse_requires(session: Session, value: Any) -> list[str]:
    """An opportunity's `requires`: known qualification type keys."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid.field("requires", "must be a list of qualification type keys")
    unknown = sorted(set(value) - set(known_keys(session, value)))
    if unknown:
        raise Invalid.field("requires", f"unknown qualification type {', '.join(unknown)}")
    return list(dict.fromkeys(value))


def qualification_dict(q: VolunteerQualification) -> dict[str, Any]:
    return {"id": q.id, "volunteer_id": q.volunteer_id, "type": q.type_key, "obtained_on": q.obtained_on.isoformat(),
            "expires_on": q.expires_on.isoformat() if q.expires_on else None, "note": q.note,
            "verified_by": q.verified_by, "created_at": q.created_at.isoformat()}


def of_volunteer(session: Session, volunteer_id: int) -> list[VolunteerQualification]:
    get_volunteer(session, volunteer_id)
    return list(session.scalars(select(VolunteerQualification).where(VolunteerQualification.volunteer_id == volunteer_id)
                                .order_by(VolunteerQualification.type_key, VolunteerQualification.id)))


def record(session: Session, volunteer_id: int, data: Any, actor: str) -> VolunteerQualification:
    """Record a qualification the staff member `actor` verified."""
    get_volunteer(session, volunteer_id)
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {n: "unknown field; expected type, obtained_on, expires_on, note"
                              for n in sorted(set(data) - {"type", "obtained_on", "expires_on", "note"})}
    qtype = session.scalars(select(QualificationType).where(QualificationType.key == data.get("type"))).first() \
        if isinstance(data.get("type"), str) else None
    if qtype is None:
        errors["type"] = "must be the key of a qualification type"
    obtained = expires = None
    note = ""
    for name in ("obtained_on", "expires_on"):
        try:
            value = parse_date(data.get(name), name)
            if name == "obtained_on":
                obtained = value
            else:
                expires = value
        except Invalid as exc:
            errors.update(exc.fields)
    if obtained is None and "obtained_on" not in errors:
        errors["obtained_on"] = "is required"
    try:
        note = contacts.clean_text(data.get("note"), "note", max_length=2000, single_line=False)
    except Invalid as exc:
        errors.update(exc.fields)
    if obtained and expires and expires < obtained:
        errors["expires_on"] = "must not be before obtained_on"
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    assert qtype is not None and obtained is not None
    if expires is None and qtype.valid_days:
        expires = obtained + dt.timedelta(days=qtype.valid_days)
    q = VolunteerQualification(volunteer_id=volunteer_id, type_key=qtype.key, obtained_on=obtained,
                               expires_on=expires, note=note, verified_by=actor, created_at=utcnow())
    session.add(q)
    session.flush()
    return q


def remove(session: Session, volunteer_id: int, qualification_id: int) -> None:
    q = session.get(VolunteerQualification, qualification_id)
    if q is None or q.volunteer_id != volunteer_id:
        raise NotFound(f"no qualification {qualification_id} for volunteer {volunteer_id}")
    session.delete(q)
    session.flush()


def missing(session: Session, volunteer_id: int, required: list[str], on: dt.date) -> dict[str, str]:
    """{key: why} for each required qualification the volunteer lacks or has expired on `on`."""
    if not required:
        return {}
    held = list(session.scalars(select(VolunteerQualification).where(
        VolunteerQualification.volunteer_id == volunteer_id, VolunteerQualification.type_key.in_(required))))
    out: dict[str, str] = {}
    for key in required:
        mine = [q for q in held if q.type_key == key and q.obtained_on <= on]
        if any(q.expires_on is None or q.expires_on >= on for q in mine):
            continue
        latest = max((q.expires_on for q in mine if q.expires_on), default=None)
        out[key] = f"expired on {latest.isoformat()}" if latest else "missing"
    return out


def expiring(session: Session, settings: Settings, today: dt.date) -> list[tuple[VolunteerQualification, Volunteer]]:
    """The staff list: qualifications expiring within CRM_QUALIFICATION_WARN_DAYS."""
    horizon = today + dt.timedelta(days=settings.qualification_warn_days)
    return list(session.execute(
        select(VolunteerQualification, Volunteer).join(Volunteer, Volunteer.id == VolunteerQualification.volunteer_id)
        .where(VolunteerQualification.expires_on >= today, VolunteerQualification.expires_on <= horizon)
        .order_by(VolunteerQualification.expires_on, VolunteerQualification.id).limit(1000)).tuples())


def claim_warning(session: Session, qualification_id: int) -> bool:
    """Conditional UPDATE: true for the one caller that gets to send this warning."""
    result = session.execute(update(VolunteerQualification).where(
        VolunteerQualification.id == qualification_id, VolunteerQualification.warned_at.is_(None))
        .values(warned_at=utcnow()))
    return result.rowcount == 1


def split_requires(session: Session, data: Any) -> tuple[Any, list[str] | None]:
    """Take `requires` out of an opportunity body (validated here), leaving the rest to opportunities."""
    if not isinstance(data, dict) or "requires" not in data:
        return data, None
    rest = {k: v for k, v in data.items() if k != "requires"}
    return rest, parse_requires(session, data["requires"])


def with_requires(session: Session, opp: Any, requires: list[str] | None, body: dict[str, Any]) -> dict[str, Any]:
    if requires is not None:
        opp.requires = requires
        session.add(opp)
        session.flush()
    return {**body, "requires": list(opp.requires or [])}
