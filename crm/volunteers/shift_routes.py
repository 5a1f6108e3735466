"""Staff API: shifts, sign-ups, qualifications and hours (SPEC section 11)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.response import Stream

from crm.http import current_staff, db, requires_editor, requires_viewer, settings_of
from crm.volunteers import hours as hours_service
from crm.volunteers import qualifications as quals
from crm.volunteers import shifts as shift_service
from crm.volunteers import signups
from crm.volunteers.service import get_volunteer

Req = Request[Any, Any, Any]


def _answer(request: Req, body: Any, ids: list[int], status_code: int = 200) -> Response[Any]:
    """The mail queued (ids) wakes the senders by itself when the session commits (crm.queue)."""
    return Response(body, status_code=status_code)


class ShiftController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/opportunities/{opportunity_id:int}/shifts", sync_to_thread=True)
    def list_shifts(self, request: Req, opportunity_id: int) -> dict[str, Any]:
        with db(request) as session:
            rows = shift_service.for_opportunity(session, opportunity_id)
            return {"items": shift_service.dicts(session, settings_of(request), rows)}

    @post("/opportunities/{opportunity_id:int}/shifts", guards=[requires_editor], sync_to_thread=True)
    def create_shifts(self, request: Req, opportunity_id: int, data: Any) -> Response[Any]:
        settings = settings_of(request)
        with db(request) as session:
            made = shift_service.create(session, settings, opportunity_id, data, current_staff(request).email)
            return Response({"items": shift_service.dicts(session, settings, made)}, status_code=201)

    @get("/shifts/{shift_id:int}", sync_to_thread=True)
    def get_shift(self, request: Req, shift_id: int) -> dict[str, Any]:
        with db(request) as session:
            return shift_service.dicts(session, settings_of(request), [shift_service.get(session, shift_id)])[0]

    @patch("/shifts/{shift_id:int}", guards=[requires_editor], sync_to_thread=True)
    def patch_shift(self, request: Req, shift_id: int, data: Any) -> Response[Any]:
        return self._change(request, shift_id, data)

    @delete("/shifts/{shift_id:int}", guards=[requires_editor], status_code=200, sync_to_thread=True)
    def cancel_shift(self, request: Req, shift_id: int) -> Response[Any]:
        return self._change(request, shift_id, {"status": "cancelled"})

    @staticmethod
    def _change(request: Req, shift_id: int, data: Any) -> Response[Any]:
        settings = settings_of(request)
        with db(request) as session:
            shift, news = shift_service.update(session, settings, shift_id, data)
            ids = signups.tell_people_on(session, settings, shift, news) if news else []
            body = shift_service.dicts(session, settings, [shift])[0]
        return _answer(request, body, ids)

    @post("/shifts/{shift_id:int}/signups", guards=[requires_editor], sync_to_thread=True)
    def sign_up(self, request: Req, shift_id: int, data: Any) -> Response[Any]:
        volunteer_id = data.get("volunteer_id") if isinstance(data, dict) else None
        with db(request) as session:
            signup, ids = signups.sign_up(session, settings_of(request), shift_id, volunteer_id,
                                          current_staff(request).email)
            body = signups.signup_dict(signup)
        return _answer(request, body, ids, 201)

    @get("/shifts/{shift_id:int}/signups", sync_to_thread=True)
    def list_signups(self, request: Req, shift_id: int) -> dict[str, Any]:
        with db(request) as session:
            return {"items": [signups.signup_dict(s) for s in signups.of_shift(session, shift_id)]}

    @patch("/signups/{signup_id:int}", guards=[requires_editor], sync_to_thread=True)
    def patch_signup(self, request: Req, signup_id: int, data: Any) -> Response[Any]:
        with db(request) as session:
            signup, ids = signups.change(session, settings_of(request), signup_id, data, current_staff(request).email)
            body = signups.signup_dict(signup)
        return _answer(request, body, ids)


class QualificationController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/qualification-types", sync_to_thread=True)
    def list_types(self, request: Req) -> dict[str, Any]:
        with db(request) as session:
            return {"items": [quals.type_dict(t) for t in quals.list_types(session)]}

    @post("/qualification-types", guards=[requires_editor], sync_to_thread=True)
    def create_type(self, request: Req, data: Any) -> Response[Any]:
        with db(request) as session:
            return Response(quals.type_dict(quals.create_type(session, data)), status_code=201)

    @get("/qualifications/expiring", sync_to_thread=True)
    def expiring(self, request: Req) -> dict[str, Any]:
        settings = settings_of(request)
        with db(request) as session:
            today = signups.local_today(settings)
            return {"items": [quals.qualification_dict(q) for q, _ in quals.expiring(session, settings, today)]}

    @get("/{volunteer_id:int}/qualifications", sync_to_thread=True)
    def list_qualifications(self, request: Req, volunteer_id: int) -> dict[str, Any]:
        with db(request) as session:
            return {"items": [quals.qualification_dict(q) for q in quals.of_volunteer(session, volunteer_id)]}

    @post("/{volunteer_id:int}/qualifications", guards=[requires_editor], sync_to_thread=True)
    def add_qualification(self, request: Req, volunteer_id: int, data: Any) -> Response[Any]:
        with db(request) as session:
            q = quals.record(session, volunteer_id, data, current_staff(request).email)
            return Response(quals.qualification_dict(q), status_code=201)

    @delete("/{volunteer_id:int}/qualifications/{qualification_id:int}", guards=[requires_editor],
            sync_to_thread=True)
    def remove_qualification(self, request: Req, volunteer_id: int, qualification_id: int) -> None:
        with db(request) as session:
            quals.remove(session, volunteer_id, qualification_id)


class HoursController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/hours", sync_to_thread=True)
    def list_hours(self, request: Req, status: str | None = None, volunteer_id: int | None = None
                   ) -> dict[str, Any]:
        with db(request) as session:
            return {"items": [hours_service.hours_dict(h) for h in hours_service.search(session, status, volunteer_id)]}

    @get("/hours/totals", sync_to_thread=True)
    def totals(self, request: Req, by: str = "volunteer", to: str | None = None) -> dict[str, Any]:
        with db(request) as session:
            return {"items": hours_service.totals(session, by, request.query_params.get("from"), to)}

    @get("/hours.csv", sync_to_thread=True)
    def hours_csv(self, request: Req, to: str | None = None) -> Stream:
        start = request.query_params.get("from")
        return Stream(hours_service.csv_stream(settings_of(request), start, to), media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": 'attachment; filename="volunteer-hours.csv"'})

    @post("/{volunteer_id:int}/hours", guards=[requires_editor], sync_to_thread=True)
    def log_hours(self, request: Req, volunteer_id: int, data: Any) -> Response[Any]:
        with db(request) as session:
            row = hours_service.log(session, volunteer_id, data, current_staff(request).email, by_staff=True)
            return Response(hours_service.hours_dict(row), status_code=201)

    @patch("/hours/{hours_id:int}", guards=[requires_editor], sync_to_thread=True)
    def review_hours(self, request: Req, hours_id: int, data: Any) -> dict[str, Any]:
        with db(request) as session:
            return hours_service.hours_dict(hours_service.review(session, hours_id, data, current_staff(request).email))

    @get("/{volunteer_id:int}/hours/total", sync_to_thread=True)
    def total(self, request: Req, volunteer_id: int) -> dict[str, Any]:
        with db(request) as session:
            get_volunteer(session, volunteer_id)
            return {"volunteer_id": volunteer_id, "hours_approved": hours_service.approved_total(session, volunteer_id)}
