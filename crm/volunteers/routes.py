"""Staff API: the volunteer pipeline and opportunities; the public "I'm interested" page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter

from crm.contacts.models import Language
from crm.contacts.routes import check_choice
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
from crm.volunteers import hours as volunteer_hours
from crm.volunteers import opportunities as opps
from crm.volunteers import qualifications as quals
from crm.volunteers import service


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
        language: str | None = None,
        contacted_before: str | None = None,
        contacted_after: str | None = None,
        never_contacted: bool | None = None,
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        check_choice("area", area, service.AREAS)
        check_choice("availability", availability, service.AVAILABILITY)
        check_choice("status", status, service.STATUSES)
        check_choice("language", language, [lang.value for lang in Language])
        filters = service.VolunteerFilters(
            area, availability, status, postal_code, language,
            service.parse_date(contacted_before, "contacted_before"),
            service.parse_date(contacted_after, "contacted_after"), never_contacted)
        with db(request) as session:
            rows, more = service.search(session, filters, decode_id_cursor(cursor), limit)
            items = [service.volunteer_dict(session, v, c) for v, c in rows]
        return page(items, encode_cursor(rows[-1][0].id) if more and rows else None)

    @get("/{volunteer_id:int}", sync_to_thread=True)
    def get_volunteer(self, request: Request[Any, Any, Any], volunteer_id: int) -> dict[str, Any]:
        with db(request) as session:
            vol, contact = service.get_volunteer(session, volunteer_id)
            return {**service.volunteer_dict(session, vol, contact), "history": service.history(session, volunteer_id),
                    "hours_approved": volunteer_hours.approved_total(session, volunteer_id)}

    @patch("/{volunteer_id:int}", guards=[requires_editor], sync_to_thread=True)
    def patch_volunteer(self, request: Request[Any, Any, Any], volunteer_id: int, data: dict[str, Any]
                        ) -> Response[Any]:
        changes = service.VolunteerPatch.parse(data)
        actor = current_staff(request).email
        with db(request) as session:
            service.apply_patch(session, settings_of(request), volunteer_id, changes, actor)
            vol, contact = service.get_volunteer(session, volunteer_id)
            body = {**service.volunteer_dict(session, vol, contact), "history": service.history(session, volunteer_id)}
        return Response(body)


class OpportunityController(Controller):
    path = "/api/v1/volunteers/opportunities"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_opportunities(self, request: Request[Any, Any, Any], area: str | None = None,
                           cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)
                           ) -> dict[str, Any]:
        check_choice("area", area, service.AREAS)
        with db(request) as session:
            rows, more = opps.search(session, area, decode_id_cursor(cursor), limit)
            items = [{**opps.opportunity_dict(o), "requires": list(o.requires or [])} for o in rows]
        return page(items, encode_cursor(rows[-1].id) if more and rows else None)

    @post("/", guards=[requires_editor], sync_to_thread=True)
    def create_opportunity(self, request: Request[Any, Any, Any], data: dict[str, Any]) -> dict[str, Any]:
        with db(request) as session:
            data, requires = quals.split_requires(session, data)
            opp = opps.create(session, data, current_staff(request).email)
            return quals.with_requires(session, opp, requires, opps.opportunity_dict(opp, []))

    @get("/{opportunity_id:int}", sync_to_thread=True)
    def get_opportunity(self, request: Request[Any, Any, Any], opportunity_id: int) -> dict[str, Any]:
        with db(request) as session:
            opp = opps.get(session, opportunity_id)
            return quals.with_requires(session, opp, None, opps.opportunity_dict(opp, opps.responses(session, opportunity_id)))

    @patch("/{opportunity_id:int}", guards=[requires_editor], sync_to_thread=True)
    def patch_opportunity(self, request: Request[Any, Any, Any], opportunity_id: int, data: dict[str, Any]
                          ) -> dict[str, Any]:
        with db(request) as session:
            data, requires = quals.split_requires(session, data)
            opp = opps.update(session, opportunity_id, data) if data or requires is None else opps.get(session, opportunity_id)
            return quals.with_requires(session, opp, requires,
                                       opps.opportunity_dict(opp, opps.responses(session, opportunity_id)))

    @get("/{opportunity_id:int}/matches", sync_to_thread=True)
    def list_matches(self, request: Request[Any, Any, Any], opportunity_id: int, cursor: str | None = None,
                     limit: int = Parameter(default=50, ge=1, le=500)) -> dict[str, Any]:
        with db(request) as session:
            rows, more = opps.matches(session, settings_of(request), opportunity_id, decode_id_cursor(cursor), limit)
            items = [service.volunteer_dict(session, v, c) for v, c in rows]
        return page(items, encode_cursor(rows[-1][0].id) if more and rows else None)
