"""Volunteer profiles: created or merged from the interest form, worked by staff."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from crm.db import insert_ignore, utcnow
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
