"""Staff API: the volunteer pipeline."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import Parameter
from sqlalchemy import exists, select

from crm.contacts.models import Contact
from crm.contacts.routes import check_choice
from crm.errors import Invalid
from crm.http import db, decode_cursor, encode_cursor, page, requires_viewer
from crm.volunteers import service
from crm.volunteers.models import Volunteer, VolunteerArea, VolunteerAvailability


def volunteer_dict(session: Any, vol: Volunteer, contact: Contact) -> dict[str, Any]:
    assert vol.id is not None
    return {
        "id": vol.id, "contact_id": vol.contact_id, "email": contact.email, "first_name": contact.first_name,
        "last_name": contact.last_name, "phone": contact.phone, "language": contact.language,
        "status": vol.status, "areas": service.areas_of(session, vol.id),
        "availability": service.availability_of(session, vol.id), "postal_code": vol.postal_code,
        "skills": vol.skills, "languages": vol.languages, "message": vol.message,
        "paused_until": vol.paused_until.isoformat() if vol.paused_until else None,
        "created_at": vol.created_at.isoformat(), "updated_at": vol.updated_at.isoformat(),
    }


class VolunteerController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_volunteers(
        self,
        request: Request[Any, Any, Any],
        area: str | None = None,
        availability: str | None = None,
        status: str | None = None,
        postal_code: str | None = None,
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        check_choice("area", area, service.AREAS)
        check_choice("availability", availability, service.AVAILABILITY)
        check_choice("status", status, service.STATUSES)
        after = decode_cursor(cursor)
        if after is not None and not isinstance(after, int):
            raise Invalid.field("cursor", "is not a cursor this API gave out")
        stmt = select(Volunteer, Contact).join(Contact, Contact.id == Volunteer.contact_id)
        if area:
            stmt = stmt.where(exists().where(VolunteerArea.volunteer_id == Volunteer.id, VolunteerArea.area == area))
        if availability:
            stmt = stmt.where(exists().where(VolunteerAvailability.volunteer_id == Volunteer.id,
                                             VolunteerAvailability.slot == availability))
        if status:
            stmt = stmt.where(Volunteer.status == status)
        if postal_code:
            stmt = stmt.where(Volunteer.postal_code.startswith(postal_code.strip(), autoescape=True))
        if after is not None:
            stmt = stmt.where(Volunteer.id < after)
        with db(request) as session:
            rows = list(session.execute(stmt.order_by(Volunteer.id.desc()).limit(limit + 1)).tuples())
            items = [volunteer_dict(session, v, c) for v, c in rows[:limit]]
        return page(items, encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None)
