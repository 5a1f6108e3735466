"""Volunteer profiles: created or merged from the interest form, worked by staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus
from crm.db import insert_ignore, keyset_page, utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.events import service as events
from crm.links import person_links, url_for
from crm.outbox import service as outbox
from crm.volunteers.models import (
    Area,
    Availability,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
    VolunteerEvent,
    VolunteerStatus,
)

AREAS = [a.value for a in Area]
AVAILABILITY = [a.value for a in Availability]
STATUSES = [s.value for s in VolunteerStatus]


def areas_of(session: Session, volunteer_id: int) -> list[str]:
    return sorted(session.scalars(select(VolunteerArea.area).where(VolunteerArea.volunteer_id == volunteer_id)))


def availability_of(session: Session, volunteer_id: int) -> list[str]:
    return sorted(session.scalars(
        select(VolunteerAvailability.slot).where(VolunteerAvailability.volunteer_id == volunteer_id)))


def set_areas(session: Session, volunteer_id: int, areas: list[str], *, merge: bool = False) -> None:
    if not merge:
        session.execute(delete(VolunteerArea).where(VolunteerArea.volunteer_id == volunteer_id,
                                                    VolunteerArea.area.not_in(areas)))
    insert_ignore(session, VolunteerArea, [{"volunteer_id": volunteer_id, "area": a} for a in areas])


def set_availability(session: Session, volunteer_id: int, slots: list[str], *, merge: bool = False) -> None:
    if not merge:
        session.execute(delete(VolunteerAvailability).where(VolunteerAvailability.volunteer_id == volunteer_id,
                                                            VolunteerAvailability.slot.not_in(slots)))
    insert_ignore(session, VolunteerAvailability, [{"volunteer_id": volunteer_id, "slot": s} for s in slots])


def for_contact(session: Session, contact_id: int) -> Volunteer | None:
    return session.scalars(select(Volunteer).where(Volunteer.contact_id == contact_id)).first()


def upsert_from_form(
    session: Session,
    contact_id: int,
    *,
    postal_code: str,
    areas: list[str],
    availability: list[str],
    skills: str,
    languages: list[str],
    message: str,
) -> tuple[Volunteer, bool]:
    """Create the profile or merge a repeat form into it (areas and availability are unioned)."""
    now = utcnow()
    created = bool(insert_ignore(
        session, Volunteer,
        {"contact_id": contact_id, "status": VolunteerStatus.interested, "postal_code": postal_code,
         "skills": skills, "languages": languages, "message": message, "created_at": now, "updated_at": now},
        ["contact_id"],
    ))
    vol = session.scalars(select(Volunteer).where(Volunteer.contact_id == contact_id)
                          .execution_options(populate_existing=True)).one()
    assert vol.id is not None
    if not created:
        vol.postal_code = postal_code or vol.postal_code
        vol.skills = skills or vol.skills
        vol.languages = sorted(set(vol.languages) | set(languages))
        if message:
            vol.message = message
        if vol.status == VolunteerStatus.inactive:
            # They came back on their own: back to the start of the pipeline.
            record_event(session, vol.id, VolunteerStatus.inactive, VolunteerStatus.interested, "form", "")
            vol.status = VolunteerStatus.interested
        vol.updated_at = now
        session.add(vol)
    set_areas(session, vol.id, areas, merge=True)
    set_availability(session, vol.id, availability, merge=True)
    if created:
        record_event(session, vol.id, None, VolunteerStatus.interested, "form", message[:5000])
    session.flush()
    return vol, created


def record_event(session: Session, volunteer_id: int, from_status: str | None, to_status: str | None,
                 actor: str, note: str, detail: dict[str, Any] | None = None) -> None:
    session.add(VolunteerEvent(volunteer_id=volunteer_id, from_status=from_status, to_status=to_status,
                               actor=actor, note=note, detail=detail or {}, created_at=utcnow()))
    if to_status is not None and to_status != from_status:
        events.record(session, "volunteer.status_changed", session.get(Volunteer, volunteer_id).contact_id,  # type: ignore[union-attr]
                      volunteer_id=volunteer_id, from_status=from_status, to_status=to_status)


# --- the pipeline -----------------------------------------------------------------------------

S = VolunteerStatus
# Legal moves. The forward path is the coordinator's funnel; anyone may leave (inactive) and
# come back (interested); only someone who has been active can pause or resume.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.interested: (S.contacted, S.inactive),
    S.contacted: (S.onboarding, S.interested, S.inactive),
    S.onboarding: (S.active, S.contacted, S.inactive),
    S.active: (S.paused, S.inactive),
    S.paused: (S.active, S.inactive),
    S.inactive: (S.interested,),
}
# Status changes that may carry an email to the volunteer (templates/email/volunteer-status).
EMAIL_STATUSES = (S.contacted, S.onboarding, S.active, S.paused, S.inactive)


def check_move(current: str, target: str) -> None:
    """Refuse an unknown status or an illegal move, naming both ends."""
    if target not in STATUSES:
        raise Invalid.field("status", f"unknown status {target!r}; expected one of {', '.join(STATUSES)}")
    if target != current and target not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current])
        raise Invalid.field("status", f"illegal move from {current!r} to {target!r}; from {current} a "
                                      f"volunteer can move to {allowed}")


def _choices(name: str, values: Any, allowed: list[str], label: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Invalid.field(name, f"must be a list of {label} keys")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise Invalid.field(name, f"unknown {label} {', '.join(repr(v) for v in unknown)}; "
                                  f"expected any of {', '.join(allowed)}")
    if not values:
        raise Invalid.field(name, f"choose at least one {label}")
    return list(dict.fromkeys(values))


def parse_date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Invalid.field(name, f"must be a date like 2026-03-31, not {value!r}") from None


@dataclass(frozen=True)
class VolunteerPatch:
    """A validated PATCH body; a field left None was not sent."""

    status: str | None = None
    note: str = ""
    areas: list[str] | None = None
    availability: list[str] | None = None
    paused_until: dt.date | None = None
    clear_paused_until: bool = False
    send_email: bool = False

    @classmethod
    def parse(cls, data: Any) -> VolunteerPatch:
        if not isinstance(data, dict):
            raise Invalid.field("body", "must be a JSON object")
        known = {"status", "note", "areas", "availability", "paused_until", "send_email"}
        extra = sorted(set(data) - known)
        if extra:
            raise Invalid.field(extra[0], f"unknown field; expected any of {', '.join(sorted(known))}")
        status = data.get("status")
        if status is not None and not isinstance(status, str):
            raise Invalid.field("status", "must be text")
        if status is not None and status not in STATUSES:
            raise Invalid.field("status", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        note = contacts.clean_text(data.get("note"), "note", max_length=5000, single_line=False)
        areas = _choices("areas", data["areas"], AREAS, "area") if data.get("areas") is not None else None
        slots = (_choices("availability", data["availability"], AVAILABILITY, "availability")
                 if data.get("availability") is not None else None)
        send_email = data.get("send_email", False)
        if not isinstance(send_email, bool):
            raise Invalid.field("send_email", "must be true or false")
        if send_email and status is None:
            raise Invalid.field("send_email", "an email goes with a status change; send a status too")
        return cls(status=status, note=note, areas=areas, availability=slots,
                   paused_until=parse_date(data.get("paused_until"), "paused_until"),
                   clear_paused_until="paused_until" in data and data["paused_until"] in (None, ""),
                   send_email=send_email)


def get_volunteer(session: Session, volunteer_id: int) -> tuple[Volunteer, Contact]:
    row = session.execute(select(Volunteer, Contact).join(Contact, Contact.id == Volunteer.contact_id)
                          .where(Volunteer.id == volunteer_id)).tuples().first()
    if row is None:
        raise NotFound(f"no volunteer {volunteer_id}")
    return row


def apply_patch(session: Session, settings: Settings, volunteer_id: int, patch: VolunteerPatch,
                actor: str) -> list[int]:
    """Move, annotate or re-profile one volunteer; one history event per call. Returns outbox ids."""
    vol, contact = get_volunteer(session, volunteer_id)
    assert vol.id is not None
    current = vol.status
    target = patch.status or current
    check_move(current, target)
    now = utcnow()
    detail: dict[str, Any] = {}
    if patch.areas is not None and patch.areas != areas_of(session, vol.id):
        set_areas(session, vol.id, patch.areas)
        detail["areas"] = patch.areas
    if patch.availability is not None and patch.availability != availability_of(session, vol.id):
        set_availability(session, vol.id, patch.availability)
        detail["availability"] = patch.availability
    if patch.paused_until is not None or patch.clear_paused_until:
        if patch.paused_until != vol.paused_until:
            vol.paused_until = patch.paused_until
            detail["paused_until"] = patch.paused_until.isoformat() if patch.paused_until else None
    elif target == S.active and current == S.paused and vol.paused_until is not None:
        vol.paused_until = None  # resuming ends the pause
        detail["paused_until"] = None
    moved = target != current
    if moved:
        vol.status = target
        if target == S.contacted:
            vol.last_contacted_at = now
    ids: list[int] = []
    if patch.send_email and moved:
        mid = _queue_status_email(session, settings, vol, contact, target)
        if mid is not None:
            ids.append(mid)
            vol.last_contacted_at = now
            detail["email"] = "volunteer-status"
    if not (moved or detail or patch.note):
        return ids  # nothing changed: no empty history rows from a repeated PATCH
    vol.updated_at = now
    session.add(vol)
    record_event(session, vol.id, current if moved else None, target if moved else None, actor, patch.note, detail)
    session.flush()
    return ids


def _queue_status_email(session: Session, settings: Settings, vol: Volunteer, contact: Contact,
                        status: str) -> int | None:
    if status not in EMAIL_STATUSES:
        raise Invalid.field("send_email", f"there is no email for a move to {status}")
    if contact.email is None or contact.email_key is None or contact.status == ContactStatus.erased:
        raise Conflict("this volunteer's address was erased; no email can be sent", fields={"send_email": "erased"})
    if contacts.suppression_reason(session, contact.email_key) in ("bounced", "complained"):
        raise Conflict("this address bounced or complained; no email can be sent",
                       fields={"send_email": "address suppressed"})
    assert contact.id is not None and vol.id is not None
    links = {**person_links(settings, contact.id), "volunteer": url_for(settings, contact.id, "volunteer")}
    ctx = {"contact": person(contact), "links": links,
           "volunteer": {"status": status, "areas": areas_of(session, vol.id),
                         "availability": availability_of(session, vol.id),
                         "paused_until": vol.paused_until.isoformat() if vol.paused_until else None}}
    return outbox.queue(session, "volunteer-status", contact.email, ctx, contact_id=contact.id,
                        language=contact.language)


def person(contact: Contact) -> dict[str, Any]:
    return {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email,
            "language": contact.language, "role": contact.role, "id": contact.id}


def history(session: Session, volunteer_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == volunteer_id)
                           .order_by(VolunteerEvent.created_at, VolunteerEvent.id))
    return [{"id": e.id, "at": e.created_at.isoformat(), "actor": e.actor, "from_status": e.from_status,
             "to_status": e.to_status, "note": e.note, "detail": e.detail} for e in rows]


def volunteer_dict(session: Session, vol: Volunteer, contact: Contact) -> dict[str, Any]:
    assert vol.id is not None
    return {
        "id": vol.id, "contact_id": vol.contact_id, "email": contact.email, "first_name": contact.first_name,
        "last_name": contact.last_name, "phone": contact.phone, "language": contact.language,
        "status": vol.status, "areas": areas_of(session, vol.id),
        "availability": availability_of(session, vol.id), "postal_code": vol.postal_code,
        "skills": vol.skills, "languages": vol.languages, "message": vol.message,
        "paused_until": vol.paused_until.isoformat() if vol.paused_until else None,
        "last_contacted_at": vol.last_contacted_at.isoformat() if vol.last_contacted_at else None,
        "created_at": vol.created_at.isoformat(), "updated_at": vol.updated_at.isoformat(),
    }


# --- the staff list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VolunteerFilters:
    area: str | None = None
    availability: str | None = None
    status: str | None = None
    postal_code: str | None = None
    language: str | None = None
    contacted_before: dt.date | None = None
    contacted_after: dt.date | None = None
    never_contacted: bool | None = None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _filtered(stmt: Any, f: VolunteerFilters) -> Any:
    """`stmt` (over Volunteer joined to Contact) narrowed by every filter that is set."""
    if f.area:
        stmt = stmt.where(exists().where(VolunteerArea.volunteer_id == Volunteer.id, VolunteerArea.area == f.area))
    if f.availability:
        stmt = stmt.where(exists().where(VolunteerAvailability.volunteer_id == Volunteer.id,
                                         VolunteerAvailability.slot == f.availability))
    if f.status:
        stmt = stmt.where(Volunteer.status == f.status)
    if f.postal_code:
        stmt = stmt.where(Volunteer.postal_code.startswith(f.postal_code.strip(), autoescape=True))
    if f.language:
        stmt = stmt.where(Contact.language == f.language)
    if f.contacted_before:
        stmt = stmt.where(Volunteer.last_contacted_at < _day_start(f.contacted_before))
    if f.contacted_after:
        stmt = stmt.where(Volunteer.last_contacted_at >= _day_start(f.contacted_after))
    if f.never_contacted is not None:
        stmt = stmt.where(Volunteer.last_contacted_at.is_(None) if f.never_contacted
                          else Volunteer.last_contacted_at.is_not(None))
    return stmt


def search(session: Session, f: VolunteerFilters, after_id: int | None, limit: int
           ) -> tuple[list[tuple[Volunteer, Contact]], bool]:
    """Newest first by id (keyset paging); returns (page, has_more)."""
    stmt = _filtered(select(Volunteer, Contact).join(Contact, Contact.id == Volunteer.contact_id), f)
    return keyset_page(session, stmt, Volunteer.id, after_id, limit, tuples=True)


def status_counts(session: Session, f: VolunteerFilters) -> dict[str, int]:
    """How many volunteers each status holds under every filter but the status: one grouped query."""
    rest = replace(f, status=None)
    stmt = _filtered(select(Volunteer.status, func.count()).select_from(Volunteer)
                     .join(Contact, Contact.id == Volunteer.contact_id), rest).group_by(Volunteer.status)
    found = dict(session.execute(stmt).tuples().all())
    return {s: int(found.get(s, 0)) for s in STATUSES}
