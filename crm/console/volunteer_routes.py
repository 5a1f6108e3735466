"""The volunteer coordinator's pages: the pipeline, one volunteer, opportunities, shifts, hours (SPEC 10, 11).

Viewers read every page; editors get the forms. Each form posts to its own path, checks the CSRF
token, calls the volunteers domain exactly as the API does, and answers with a 303 back to the
page (with a short "done" note) or the same page again with the refusal in words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect
from sqlmodel import Session

from crm.campaigns import invitations
from crm.console import shift_views, volunteer_views
from crm.console.volunteer_views import DONE, Clock
from crm.console.web import (
    PAGE_SIZE,
    ConsoleSection,
    Form,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.db import session_scope, today, utcnow
from crm.errors import Conflict, DomainError, Invalid
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.volunteers import hours as hours_service
from crm.volunteers import opportunities as opps
from crm.volunteers import qualifications as quals
from crm.volunteers import service, signups
from crm.volunteers import shifts as shift_service

Req = Request[Any, Any, Any]
BASE = "/staff/volunteers"
FIELD_LABELS = {"status": "New status", "note": "Note", "send_email": "Email", "paused_until": "Pause until",
                "type": "Qualification", "obtained_on": "Obtained on", "expires_on": "Expires on", "date": "Date",
                "hours": "Hours", "title": "Title", "area": "Area", "postal_code": "Postal code",
                "needed": "Volunteers needed", "starts_on": "Starts on", "ends_on": "Ends on",
                "description": "Description", "schedule": "Schedule", "availability": "Availability",
                "requires": "Requires", "starts_at": "Starts", "ends_at": "Ends", "capacity": "Capacity",
                "location": "Location", "repeat.until": "Repeat weekly until", "volunteer_id": "Volunteer",
                "email": "Email address", "outcome": "Attendance", "shift_id": "Shift"}


def words(exc: DomainError) -> str:
    """A refusal as a coordinator reads it: each field by its label and why."""
    if isinstance(exc, Invalid) and exc.fields:
        return "; ".join(f"{FIELD_LABELS.get(k, k)}: {v}" for k, v in exc.fields.items())
    return exc.message


def code(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 400


def attempt(request: Req, work: Callable[[Session], str]) -> str | DomainError:
    """Run one form's change in its own transaction: the "done" key, or the refusal (nothing kept)."""
    try:
        with session_scope(settings_of(request)) as session:
            return work(session)
    except (Invalid, Conflict) as exc:
        return exc


def common(request: Req, **ctx: Any) -> dict[str, Any]:
    done = DONE.get(request.query_params.get("done") or "")
    invited = request.query_params.get("invited") or ""
    if invited.isdigit():
        done = f"{invited} invitation{'s' if invited != '1' else ''} queued; they go out in the next few minutes."
    return {"L": volunteer_views.labels(), "clock": Clock(settings_of(request)), "done": done, "error": None, **ctx}


class VolunteerPages(ConsoleSection):
    @get("/volunteers", guards=[console_viewer], sync_to_thread=True)
    def pipeline(self, request: Req, after: str | None = None) -> Response[str]:
        settings = settings_of(request)
        query = volunteer_views.ListQuery.of(dict(request.query_params))
        try:
            after_id = decode_id_cursor(after)
        except Invalid:  # a mangled paging link starts from the top
            after_id = None
        with session_scope(settings) as session:
            found = volunteer_views.pipeline(session, settings, query, after_id, board=query.view == "board",
                                             page_size=PAGE_SIZE)
        nxt = encode_cursor(found.next_cursor) if found.next_cursor else None
        return page(request, "volunteers/list.html", title="Volunteers",
                    **common(request, p=found, q=query, next_cursor=nxt))

    @get("/volunteers/{volunteer_id:int}", guards=[console_viewer], sync_to_thread=True)
    def volunteer(self, request: Req, volunteer_id: int) -> Response[str]:
        return self._page(request, volunteer_id)

    @staticmethod
    def _page(request: Req, volunteer_id: int, error: DomainError | None = None) -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            found = volunteer_views.volunteer_page(session, settings, volunteer_id)
        ctx = common(request, v=found, email_moves=volunteer_views.EMAIL_MOVES, today=today(settings),
                     detail_words=volunteer_views.detail_words)
        if error is not None:
            ctx.update(error=words(error), done=None)
        return page(request, "volunteers/volunteer.html", status_code=code(error) if error else 200,
                    title=f"Volunteer {found.name}", **ctx)

    def _change(self, request: Req, volunteer_id: int, work: Callable[[Session], str]) -> Response[Any]:
        outcome = attempt(request, work)
        if isinstance(outcome, DomainError):
            return self._page(request, volunteer_id, outcome)
        return Redirect(f"{BASE}/{volunteer_id}?done={outcome}", status_code=303)

    @post("/volunteers/{volunteer_id:int}/status", guards=[console_editor], sync_to_thread=True)
    def move(self, request: Req, volunteer_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        return self._change(request, volunteer_id, lambda s: self._patch(
            request, s, volunteer_id, volunteer_views.move_patch(data), "moved"))

    @post("/volunteers/{volunteer_id:int}/pause", guards=[console_editor], sync_to_thread=True)
    def pause(self, request: Req, volunteer_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        on = today(settings_of(request))
        return self._change(request, volunteer_id, lambda s: self._patch(
            request, s, volunteer_id,
            volunteer_views.pause_patch(service.get_volunteer(s, volunteer_id)[0], data, on), "paused"))

    @post("/volunteers/{volunteer_id:int}/notes", guards=[console_editor], sync_to_thread=True)
    def note(self, request: Req, volunteer_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        return self._change(request, volunteer_id, lambda s: self._patch(
            request, s, volunteer_id, volunteer_views.note_patch(data), "note"))

    @staticmethod
    def _patch(request: Req, session: Session, volunteer_id: int, patch: service.VolunteerPatch, done: str) -> str:
        service.apply_patch(session, settings_of(request), volunteer_id, patch, staff_email(request))
        return done

    @post("/volunteers/{volunteer_id:int}/qualifications", guards=[console_editor], sync_to_thread=True)
    def add_qualification(self, request: Req, volunteer_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        def work(session: Session) -> str:
            quals.record(session, volunteer_id, volunteer_views.qualification_body(data), staff_email(request))
            return "qualification"
        return self._change(request, volunteer_id, work)

    @post("/volunteers/{volunteer_id:int}/qualifications/{qualification_id:int}/remove", guards=[console_editor],
          sync_to_thread=True)
    def remove_qualification(self, request: Req, volunteer_id: int, qualification_id: int, data: Form
                             ) -> Response[Any]:
        check_csrf(request, data)
        def work(session: Session) -> str:
            quals.remove(session, volunteer_id, qualification_id)
            return "qualification-removed"
        return self._change(request, volunteer_id, work)

    @post("/volunteers/{volunteer_id:int}/hours", guards=[console_editor], sync_to_thread=True)
    def log_hours(self, request: Req, volunteer_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        def work(session: Session) -> str:
            hours_service.log(session, volunteer_id, volunteer_views.hours_body(data), staff_email(request), by_staff=True)
            return "hours"
        return self._change(request, volunteer_id, work)


class OpportunityPages(ConsoleSection):
    @get("/volunteers/opportunities", guards=[console_viewer], sync_to_thread=True)
    def opportunities(self, request: Req, after: str | None = None) -> Response[str]:
        try:
            after_id = decode_id_cursor(after)
        except Invalid:
            after_id = None
        with session_scope(settings_of(request)) as session:
            rows, more = opps.search(session, None, after_id, PAGE_SIZE)
            responses = shift_views.response_counts(session, [o.id for o in rows if o.id is not None])
        nxt = encode_cursor(rows[-1].id) if more and rows else None
        return page(request, "volunteers/opportunities.html", title="Opportunities",
                    **common(request, rows=rows, responses=responses, next_cursor=nxt))

    @get("/volunteers/opportunities/new", guards=[console_editor], sync_to_thread=True)
    def new(self, request: Req) -> Response[str]:
        return self._form(request, None, {})

    @get("/volunteers/opportunities/{opportunity_id:int}/edit", guards=[console_editor], sync_to_thread=True)
    def edit(self, request: Req, opportunity_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            opp = opps.get(session, opportunity_id)
            values = {k: ("" if v is None else str(v)) for k, v in opps.opportunity_dict(opp).items()}
            values.update({f"requires_{k}": "yes" for k in opp.requires or []})
        return self._form(request, opportunity_id, values)

    @staticmethod
    def _form(request: Req, opportunity_id: int | None, values: dict[str, str], error: DomainError | None = None
              ) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            types = [(t.key, t.label) for t in quals.list_types(session)]
        heading = "New opportunity" if opportunity_id is None else "Edit opportunity"
        return page(request, "volunteers/opportunity_form.html", status_code=code(error) if error else 200,
                    title=heading, **common(request, heading=heading, opportunity_id=opportunity_id, values=values,
                                            types=types, error=words(error) if error else None))

    @post("/volunteers/opportunities", guards=[console_editor], sync_to_thread=True)
    def create(self, request: Req, data: Form) -> Response[Any]:
        return self._save(request, None, data)

    @post("/volunteers/opportunities/{opportunity_id:int}", guards=[console_editor], sync_to_thread=True)
    def update(self, request: Req, opportunity_id: int, data: Form) -> Response[Any]:
        return self._save(request, opportunity_id, data)

    def _save(self, request: Req, opportunity_id: int | None, data: dict[str, str]) -> Response[Any]:
        check_csrf(request, data)
        def work(session: Session) -> str:
            opp = shift_views.save_opportunity(session, data, staff_email(request), opportunity_id)
            return f"{opp.id}?done={'created' if opportunity_id is None else 'saved'}"
        outcome = attempt(request, work)
        if isinstance(outcome, DomainError):
            return self._form(request, opportunity_id, data, outcome)
        return Redirect(f"{BASE}/opportunities/{outcome}", status_code=303)

    @get("/volunteers/opportunities/{opportunity_id:int}", guards=[console_viewer], sync_to_thread=True)
    def opportunity(self, request: Req, opportunity_id: int) -> Response[str]:
        return self._page(request, opportunity_id)

    @staticmethod
    def _page(request: Req, opportunity_id: int, error: DomainError | None = None) -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            opp = opps.get(session, opportunity_id)
            ctx = common(request, opp=opp, matches=shift_views.matches(session, settings, opp),
                         responses=opps.responses(session, opportunity_id),
                         shifts=shift_service.dicts(session, settings, shift_service.for_opportunity(
                             session, opportunity_id, after=utcnow())),
                         types=dict((t.key, t.label) for t in quals.list_types(session)))
        if error is not None:
            ctx.update(error=words(error), done=None)
        return page(request, "volunteers/opportunity.html", status_code=code(error) if error else 200,
                    title=f"Opportunity {opp.title}", **ctx)

    @get("/volunteers/opportunities/{opportunity_id:int}/notify", guards=[console_editor], sync_to_thread=True)
    def confirm_notify(self, request: Req, opportunity_id: int) -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            opp = opps.get(session, opportunity_id)
            count = invitations.would_invite(session, settings, opportunity_id)
        return page(request, "volunteers/notify.html", title="Notify matches", **common(request, opp=opp, count=count))

    @post("/volunteers/opportunities/{opportunity_id:int}/notify", guards=[console_editor], sync_to_thread=True)
    def notify(self, request: Req, opportunity_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        outcome = attempt(request, lambda s: str(invitations.notify(
            s, settings_of(request), opportunity_id, staff_email(request)).queued))
        if isinstance(outcome, DomainError):
            return self._page(request, opportunity_id, outcome)
        return Redirect(f"{BASE}/opportunities/{opportunity_id}?invited={outcome}", status_code=303)

    @post("/volunteers/opportunities/{opportunity_id:int}/shifts", guards=[console_editor], sync_to_thread=True)
    def add_shift(self, request: Req, opportunity_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        def work(session: Session) -> str:
            shift_service.create(session, settings_of(request), opportunity_id, shift_views.shift_body(data),
                                 staff_email(request))
            return "shift"
        outcome = attempt(request, work)
        if isinstance(outcome, DomainError):
            return self._page(request, opportunity_id, outcome)
        return Redirect(f"{BASE}/opportunities/{opportunity_id}?done={outcome}", status_code=303)


class ShiftPages(ConsoleSection):
    @get("/volunteers/shifts", guards=[console_viewer], sync_to_thread=True)
    def calendar(self, request: Req, week: str | None = None, opportunity: int | None = None) -> Response[str]:
        settings = settings_of(request)
        monday = shift_views.monday_of(week, settings)
        with session_scope(settings) as session:
            days = shift_views.week(session, settings, monday, opportunity)
            opp = opps.get(session, opportunity) if opportunity is not None else None
        return page(request, "volunteers/calendar.html", title="Shift calendar",
                    **common(request, days=days, monday=monday, opp=opp, timedelta=dt.timedelta))

    @get("/volunteers/shifts/{shift_id:int}", guards=[console_viewer], sync_to_thread=True)
    def shift(self, request: Req, shift_id: int) -> Response[str]:
        return self._page(request, shift_id)

    @staticmethod
    def _page(request: Req, shift_id: int, error: str | None = None, status_code: int = 200) -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            found = shift_views.shift_page(session, settings, shift_id)
        ctx = common(request, s=found)
        if error is not None:
            ctx.update(error=error, done=None)
        return page(request, "volunteers/shift.html", status_code=status_code,
                    title=f"Shift of {found.opportunity.title}", **ctx)

    @post("/volunteers/shifts/{shift_id:int}/signups", guards=[console_editor], sync_to_thread=True)
    def sign_up(self, request: Req, shift_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        settings = settings_of(request)
        with session_scope(settings) as session:
            refused = self._sign_up(request, session, shift_id, data)
        if isinstance(refused, tuple):
            return self._page(request, shift_id, *refused)
        return Redirect(f"{BASE}/shifts/{shift_id}?done={refused}", status_code=303)

    @staticmethod
    def _sign_up(request: Req, session: Session, shift_id: int, data: dict[str, str]) -> str | tuple[str, int]:
        """The sign-up in a savepoint, so a refusal can still look up the clashing shift by name."""
        try:
            volunteer_id = shift_views.volunteer_for_signup(session, data)
            with session.begin_nested():
                signup, _ = signups.sign_up(session, settings_of(request), shift_id, volunteer_id, staff_email(request))
        except Invalid as exc:
            return words(exc), 400
        except Conflict as exc:
            name = volunteer_views.name_of(service.get_volunteer(session, volunteer_id)[1])
            return shift_views.refusal(session, settings_of(request), exc, name), 409
        return "signed-up" if signup.status == "confirmed" else "waitlisted"

    @post("/volunteers/signups/{signup_id:int}", guards=[console_editor], sync_to_thread=True)
    def attendance(self, request: Req, signup_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            shift_id = signups.get(session, signup_id).shift_id

        def work(session: Session) -> str:
            cancel = data.get("outcome") == "cancelled"
            body = {"status": "cancelled"} if cancel else shift_views.attendance_body(data)
            signups.change(session, settings_of(request), signup_id, body, staff_email(request))
            return "cancelled" if cancel else "attendance"
        outcome = attempt(request, work)
        if isinstance(outcome, DomainError):
            return self._page(request, shift_id, words(outcome), code(outcome))
        return Redirect(f"{BASE}/shifts/{shift_id}?done={outcome}", status_code=303)


class HoursPages(ConsoleSection):
    @get("/volunteers/hours", guards=[console_viewer], sync_to_thread=True)
    def queue(self, request: Req, reviewed: int | None = None) -> Response[str]:
        return self._page(request, reviewed=reviewed)

    @staticmethod
    def _page(request: Req, error: DomainError | None = None, reviewed: int | None = None) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            rows = shift_views.pending_hours(session)
        return page(request, "volunteers/hours.html", status_code=code(error) if error else 200,
                    title="Hours to approve", **common(request, rows=rows, reviewed=reviewed,
                                                       verdict=request.query_params.get("verdict"),
                                                       error=words(error) if error else None))

    @post("/volunteers/hours", guards=[console_editor], sync_to_thread=True)
    def review(self, request: Req, data: Form) -> Response[Any]:
        check_csrf(request, data)
        verdict = "rejected" if data.get("verdict") == "rejected" else "approved"
        outcome = attempt(request, lambda s: str(hours_service.review_many(
            s, shift_views.chosen_hours(data), verdict, staff_email(request))))
        if isinstance(outcome, DomainError):
            return self._page(request, outcome)
        return Redirect(f"{BASE}/hours?reviewed={outcome}&verdict={verdict}", status_code=303)
