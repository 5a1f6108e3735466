"""Staff API for journeys (SPEC 13): editors write, viewers read; a person's runs on their contact."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from crm.bodies import present, shaped
from crm.contacts.staff_service import get_contact
from crm.http import (
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    page,
    requires_editor,
    requires_viewer,
    settings_of,
)
from crm.journeys import service, stats
from crm.journeys.schemas import (
    JourneyCreate,
    JourneyPage,
    JourneyPublic,
    JourneyRuns,
    JourneyStats,
    JourneyUpdate,
)
from crm.staff.service import audit

Req = Request[Any, Any, Any]


def _public(session: Any, journey: Any) -> JourneyPublic:
    return shaped(JourneyPublic, service.as_dict(session, journey))


class JourneyController(Controller):
    path = "/api/v1/journeys"
    tags = ["journeys"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_journeys(self, request: Req, journey_state: str | None = Parameter(default=None, query="state"),
                      cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)) -> JourneyPage:
        with db(request) as session:
            rows, more = service.list_journeys(session, decode_id_cursor(cursor), limit, journey_state)
            return shaped(JourneyPage, page([service.as_dict(session, j) for j in rows],
                                            encode_cursor(rows[-1].id) if more else None))

    @post("/", guards=[requires_editor], sync_to_thread=True, status_code=201)
    def create(self, request: Req, data: JourneyCreate) -> JourneyPublic:
        with db(request) as session:
            journey = service.create(session, settings_of(request), present(data), current_staff(request).email)
            return _public(session, journey)

    @get("/{journey_id:int}", sync_to_thread=True)
    def read(self, request: Req, journey_id: int) -> JourneyPublic:
        with db(request) as session:
            return _public(session, service.get(session, journey_id))

    @patch("/{journey_id:int}", guards=[requires_editor], sync_to_thread=True)
    def change(self, request: Req, journey_id: int, data: JourneyUpdate) -> JourneyPublic:
        with db(request) as session:
            return _public(session, service.change(session, settings_of(request), journey_id, present(data)))

    @delete("/{journey_id:int}", guards=[requires_editor], sync_to_thread=True)
    def remove(self, request: Req, journey_id: int) -> None:
        with db(request) as session:
            service.delete_journey(session, journey_id)

    @post("/{journey_id:int}/activate", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def activate(self, request: Req, journey_id: int) -> JourneyPublic:
        with db(request) as session:
            return _public(session, service.activate(session, settings_of(request), journey_id))

    @post("/{journey_id:int}/pause", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def pause(self, request: Req, journey_id: int) -> JourneyPublic:
        with db(request) as session:
            return _public(session, service.pause(session, settings_of(request), journey_id))

    @get("/{journey_id:int}/stats", sync_to_thread=True)
    def stats(self, request: Req, journey_id: int) -> JourneyStats:
        with db(request) as session:
            return shaped(JourneyStats, stats.stats(session, journey_id))


class ContactJourneyController(Controller):
    path = "/api/v1/contacts/{contact_id:int}/journeys"
    tags = ["journeys"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def of_contact(self, request: Req, contact_id: int) -> JourneyRuns:
        """The person's runs through journeys (audited: it is a look at one person)."""
        with db(request) as session:
            get_contact(session, contact_id)
            items = stats.of_contact(session, contact_id)
            audit(session, current_staff(request).email, "contact.journeys", f"contact:{contact_id}", rows=len(items))
            return shaped(JourneyRuns, page(items, None))
