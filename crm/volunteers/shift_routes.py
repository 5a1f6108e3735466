"""Staff API: shifts, sign-ups, qualifications and hours (SPEC section 11).

Each typed body is checked again by its service; `explain` (crm.http) runs that check on the raw
body when the types fail, so a 400 names every bad field at once. The mail a change queues wakes
the senders by itself when the session commits (crm.queue).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.response import Stream

from crm.bodies import present, shaped
from crm.http import current_staff, db, requires_editor, requires_viewer, settings_of
from crm.volunteers import hours as hours_service
from crm.volunteers import qualifications as quals
from crm.volunteers import shifts as shift_service
from crm.volunteers import signups
from crm.volunteers.schemas import (
    HoursCreate,
    HoursList,
    HoursPublic,
    HoursReview,
    HoursTotals,
    QualificationCreate,
    QualificationList,
    QualificationPublic,
    QualificationTypeCreate,
    QualificationTypeList,
    QualificationTypePublic,
    ShiftCreate,
    ShiftList,
    ShiftPatch,
    ShiftPublic,
    SignupCreate,
    SignupList,
    SignupPatch,
    SignupPublic,
    VolunteerHoursTotal,
)
from crm.volunteers.service import get_volunteer

Req = Request[Any, Any, Any]
Raw = dict[str, Any]


def _shift_check(partial: bool) -> Any:
    def check(_session: Any, settings: Any, raw: Raw, _params: Raw) -> None:
        shift_service.parse_shift(raw, shift_service.zone(settings), partial=partial)
    return check


def _signup_check(session: Any, settings: Any, raw: Raw, params: Raw) -> None:
    signups.change(session, settings, params["signup_id"], raw, "explain")


def _type_check(session: Any, _settings: Any, raw: Raw, _params: Raw) -> None:
    quals.create_type(session, raw)


def _qualification_check(session: Any, _settings: Any, raw: Raw, params: Raw) -> None:
    quals.record(session, params["volunteer_id"], raw, "explain")


def _hours_check(session: Any, _settings: Any, raw: Raw, params: Raw) -> None:
    hours_service.log(session, params["volunteer_id"], raw, "explain", by_staff=True)


def _shifts(session: Any, settings: Any, rows: list[Any]) -> ShiftList:
    return shaped(ShiftList, {"items": shift_service.dicts(session, settings, rows)})


def _signup(signup: Any) -> SignupPublic:
    return shaped(SignupPublic, signups.signup_dict(signup))


class ShiftController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/opportunities/{opportunity_id:int}/shifts", sync_to_thread=True)
    def list_shifts(self, request: Req, opportunity_id: int) -> ShiftList:
        with db(request) as session:
            return _shifts(session, settings_of(request), shift_service.for_opportunity(session, opportunity_id))

    @post("/opportunities/{opportunity_id:int}/shifts", guards=[requires_editor], sync_to_thread=True,
          status_code=201, opt={"explain": _shift_check(False)})
    def create_shifts(self, request: Req, opportunity_id: int, data: ShiftCreate) -> ShiftList:
        settings = settings_of(request)
        with db(request) as session:
            made = shift_service.create(session, settings, opportunity_id, present(data), current_staff(request).email)
            return _shifts(session, settings, made)

    @get("/shifts/{shift_id:int}", sync_to_thread=True)
    def get_shift(self, request: Req, shift_id: int) -> ShiftPublic:
        with db(request) as session:
            return _shifts(session, settings_of(request), [shift_service.get(session, shift_id)]).items[0]

    @patch("/shifts/{shift_id:int}", guards=[requires_editor], sync_to_thread=True,
           opt={"explain": _shift_check(True)})
    def patch_shift(self, request: Req, shift_id: int, data: ShiftPatch) -> ShiftPublic:
        return self._change(request, shift_id, present(data))

    @delete("/shifts/{shift_id:int}", guards=[requires_editor], status_code=200, sync_to_thread=True)
    def cancel_shift(self, request: Req, shift_id: int) -> ShiftPublic:
        return self._change(request, shift_id, {"status": "cancelled"})

    @staticmethod
    def _change(request: Req, shift_id: int, data: Raw) -> ShiftPublic:
        settings = settings_of(request)
        with db(request) as session:
            shift, news = shift_service.update(session, settings, shift_id, data)
            if news:
                signups.tell_people_on(session, settings, shift, news)
            return _shifts(session, settings, [shift]).items[0]

    @post("/shifts/{shift_id:int}/signups", guards=[requires_editor], sync_to_thread=True, status_code=201)
    def sign_up(self, request: Req, shift_id: int, data: SignupCreate) -> SignupPublic:
        with db(request) as session:
            signup, _ids = signups.sign_up(session, settings_of(request), shift_id, data.volunteer_id,
                                           current_staff(request).email)
            return _signup(signup)

    @get("/shifts/{shift_id:int}/signups", sync_to_thread=True)
    def list_signups(self, request: Req, shift_id: int) -> SignupList:
        with db(request) as session:
            return shaped(SignupList, {"items": [signups.signup_dict(s) for s in signups.of_shift(session, shift_id)]})

    @patch("/signups/{signup_id:int}", guards=[requires_editor], sync_to_thread=True,
           opt={"explain": _signup_check})
    def patch_signup(self, request: Req, signup_id: int, data: SignupPatch) -> SignupPublic:
        with db(request) as session:
            signup, _ids = signups.change(session, settings_of(request), signup_id, present(data),
                                          current_staff(request).email)
            return _signup(signup)


class QualificationController(Controller):
    path = "/api/v1/volunteers"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @get("/qualification-types", sync_to_thread=True)
    def list_types(self, request: Req) -> QualificationTypeList:
        with db(request) as session:
            return shaped(QualificationTypeList, {"items": [quals.type_dict(t) for t in quals.list_types(session)]})

    @post("/qualification-types", guards=[requires_editor], sync_to_thread=True, status_code=201,
          opt={"explain": _type_check})
    def create_type(self, request: Req, data: QualificationTypeCreate) -> QualificationTypePublic:
        with db(request) as session:
            return shaped(QualificationTypePublic, quals.type_dict(quals.create_type(session, present(data))))

    @get("/qualifications/expiring", sync_to_thread=True)
    def expiring(self, request: Req) -> QualificationList:
        settings = settings_of(request)
        with db(request) as session:
            soon = quals.expiring(session, settings, signups.local_today(settings))
            return shaped(QualificationList, {"items": [quals.qualification_dict(q) for q, _ in soon]})

    @get("/{volunteer_id:int}/qualifications", sync_to_thread=True)
    def list_qualifications(self, request: Req, volunteer_id: int) -> QualificationList:
        with db(request) as session:
            held = quals.of_volunteer(session, volunteer_id)
            return shaped(QualificationList, {"items": [quals.qualification_dict(q) for q in held]})

    @post("/{volunteer_id:int}/qualifications", guards=[requires_editor], sync_to_thread=True, status_code=201,
          opt={"explain": _qualification_check})
    def add_qualification(self, request: Req, volunteer_id: int, data: QualificationCreate) -> QualificationPublic:
        with db(request) as session:
            q = quals.record(session, volunteer_id, present(data), current_staff(request).email)
            return shaped(QualificationPublic, quals.qualification_dict(q))

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
    def list_hours(self, request: Req, status: str | None = None, volunteer_id: int | None = None) -> HoursList:
        with db(request) as session:
            rows = hours_service.search(session, status, volunteer_id)
            return shaped(HoursList, {"items": [hours_service.hours_dict(h) for h in rows]})

    @get("/hours/totals", sync_to_thread=True)
    def totals(self, request: Req, by: str = "volunteer", to: str | None = None) -> HoursTotals:
        with db(request) as session:
            return shaped(HoursTotals, {"items": hours_service.totals(session, by, request.query_params.get("from"), to)})

    @get("/hours.csv", sync_to_thread=True, media_type="text/csv; charset=utf-8")
    def hours_csv(self, request: Req, to: str | None = None) -> Stream:
        start = request.query_params.get("from")
        return Stream(hours_service.csv_stream(settings_of(request), start, to), media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": 'attachment; filename="volunteer-hours.csv"'})

    @post("/{volunteer_id:int}/hours", guards=[requires_editor], sync_to_thread=True, status_code=201,
          opt={"explain": _hours_check})
    def log_hours(self, request: Req, volunteer_id: int, data: HoursCreate) -> HoursPublic:
        with db(request) as session:
            row = hours_service.log(session, volunteer_id, present(data), current_staff(request).email, by_staff=True)
            return shaped(HoursPublic, hours_service.hours_dict(row))

    @patch("/hours/{hours_id:int}", guards=[requires_editor], sync_to_thread=True)
    def review_hours(self, request: Req, hours_id: int, data: HoursReview) -> HoursPublic:
        with db(request) as session:
            row = hours_service.review(session, hours_id, present(data), current_staff(request).email)
            return shaped(HoursPublic, hours_service.hours_dict(row))

    @get("/{volunteer_id:int}/hours/total", sync_to_thread=True)
    def total(self, request: Req, volunteer_id: int) -> VolunteerHoursTotal:
        with db(request) as session:
            get_volunteer(session, volunteer_id)
            return VolunteerHoursTotal(volunteer_id=volunteer_id,
                                       hours_approved=hours_service.approved_total(session, volunteer_id))
