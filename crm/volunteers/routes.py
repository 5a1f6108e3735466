"""Staff API: the volunteer pipeline and opportunities; the public "I'm interested" page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import Parameter

from crm.bodies import present, shaped
from crm.contacts.models import Language
from crm.http import (
    check_choice,
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
from crm.volunteers.schemas import (
    OpportunityCreate,
    OpportunityPage,
    OpportunityPatch,
    OpportunityPublic,
    VolunteerPage,
    VolunteerPatchBody,
    VolunteerPublic,
)


def _explain_patch(_session: Any, _settings: Any, raw: dict[str, Any], *_: Any) -> None:
    service.VolunteerPatch.parse(raw)


def _explain_opportunity(partial: bool) -> Any:
    def check(session: Any, _settings: Any, raw: dict[str, Any], *_: Any) -> None:
        rest, _ = quals.split_requires(session, raw)
        opps.parse_fields(rest, partial=partial)
    return check


def _opportunity(session: Any, opp: Any, requires: list[str] | None, body: dict[str, Any]) -> OpportunityPublic:
    return shaped(OpportunityPublic, quals.with_requires(session, opp, requires, body))


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
    ) -> VolunteerPage:
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
        return shaped(VolunteerPage, page(items, encode_cursor(rows[-1][0].id) if more and rows else None))

    @get("/{volunteer_id:int}", sync_to_thread=True)
    def get_volunteer(self, request: Request[Any, Any, Any], volunteer_id: int) -> VolunteerPublic:
        with db(request) as session:
            vol, contact = service.get_volunteer(session, volunteer_id)
            return shaped(VolunteerPublic, {
                **service.volunteer_dict(session, vol, contact), "history": service.history(session, volunteer_id),
                "hours_approved": volunteer_hours.approved_total(session, volunteer_id)})

    @patch("/{volunteer_id:int}", guards=[requires_editor], sync_to_thread=True, opt={"explain": _explain_patch})
    def patch_volunteer(self, request: Request[Any, Any, Any], volunteer_id: int, data: VolunteerPatchBody
                        ) -> VolunteerPublic:
        changes = service.VolunteerPatch.parse(present(data))
        actor = current_staff(request).email
        with db(request) as session:
            service.apply_patch(session, settings_of(request), volunteer_id, changes, actor)
            vol, contact = service.get_volunteer(session, volunteer_id)
            return shaped(VolunteerPublic, {**service.volunteer_dict(session, vol, contact),
                                            "history": service.history(session, volunteer_id)})


class OpportunityController(Controller):
    path = "/api/v1/volunteers/opportunities"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_opportunities(self, request: Request[Any, Any, Any], area: str | None = None,
                           cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)
                           ) -> OpportunityPage:
        check_choice("area", area, service.AREAS)
        with db(request) as session:
            rows, more = opps.search(session, area, decode_id_cursor(cursor), limit)
            items = [{**opps.opportunity_dict(o), "requires": list(o.requires or [])} for o in rows]
        return shaped(OpportunityPage, page(items, encode_cursor(rows[-1].id) if more and rows else None))

    @post("/", guards=[requires_editor], sync_to_thread=True, opt={"explain": _explain_opportunity(False)})
    def create_opportunity(self, request: Request[Any, Any, Any], data: OpportunityCreate) -> OpportunityPublic:
        with db(request) as session:
            fields, requires = quals.split_requires(session, present(data))
            opp = opps.create(session, fields, current_staff(request).email)
            return _opportunity(session, opp, requires, opps.opportunity_dict(opp, []))

    @get("/{opportunity_id:int}", sync_to_thread=True)
    def get_opportunity(self, request: Request[Any, Any, Any], opportunity_id: int) -> OpportunityPublic:
        with db(request) as session:
            opp = opps.get(session, opportunity_id)
            return _opportunity(session, opp, None, opps.opportunity_dict(opp, opps.responses(session, opportunity_id)))

    @patch("/{opportunity_id:int}", guards=[requires_editor], sync_to_thread=True,
           opt={"explain": _explain_opportunity(True)})
    def patch_opportunity(self, request: Request[Any, Any, Any], opportunity_id: int, data: OpportunityPatch
                          ) -> OpportunityPublic:
        with db(request) as session:
            fields, requires = quals.split_requires(session, present(data))
            opp = (opps.update(session, opportunity_id, fields) if fields or requires is None
                   else opps.get(session, opportunity_id))
            return _opportunity(session, opp, requires, opps.opportunity_dict(opp, opps.responses(session, opportunity_id)))

    @get("/{opportunity_id:int}/matches", sync_to_thread=True)
    def list_matches(self, request: Request[Any, Any, Any], opportunity_id: int, cursor: str | None = None,
                     limit: int = Parameter(default=50, ge=1, le=500)) -> VolunteerPage:
        with db(request) as session:
            rows, more = opps.matches(session, settings_of(request), opportunity_id, decode_id_cursor(cursor), limit)
            items = [service.volunteer_dict(session, v, c) for v, c in rows]
        return shaped(VolunteerPage, page(items, encode_cursor(rows[-1][0].id) if more and rows else None))
