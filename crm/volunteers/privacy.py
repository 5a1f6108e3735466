"""A person's volunteer profile: exported with its history; removed on erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from crm.db import iso
from crm.volunteers import service as volunteers
from crm.volunteers.models import Volunteer, VolunteerArea, VolunteerAvailability, VolunteerEvent


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    vol = session.scalars(select(Volunteer).where(Volunteer.contact_id == contact_id)).first()
    if vol is None or vol.id is None:
        return {"volunteer": None}
    events = session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vol.id)
                             .order_by(VolunteerEvent.id))
    return {"volunteer": {
        "status": vol.status, "areas": volunteers.areas_of(session, vol.id),
        "availability": volunteers.availability_of(session, vol.id), "skills": vol.skills,
        "languages": vol.languages, "message": vol.message, "postal_code": vol.postal_code,
        "travel_radius_km": vol.travel_radius_km, "paused_until": iso(vol.paused_until),
        "created_at": iso(vol.created_at),
        "events": [{"from_status": e.from_status, "to_status": e.to_status, "note": e.note,
                    "actor": e.actor, "created_at": iso(e.created_at)} for e in events]}}


def forget(session: Session, contact_id: int) -> None:
    # Areas, availability and the pipeline history go with the profile.
    vol_ids = list(session.scalars(select(Volunteer.id).where(Volunteer.contact_id == contact_id)))
    if vol_ids:
        for table in (VolunteerArea, VolunteerAvailability, VolunteerEvent):
            session.execute(delete(table).where(table.volunteer_id.in_(vol_ids)))  # type: ignore[attr-defined]
        session.execute(delete(Volunteer).where(Volunteer.id.in_(vol_ids)))  # type: ignore[union-attr]
