"""The volunteer's own page (`/volunteer/{token}`) and its JSON twin (`/api/v1/volunteer-portal/{token}`).

Every GET only shows; changes come from the page's buttons (POST), because mail scanners follow links.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from crm.bodies import present, shaped
from crm.errors import DomainError
from crm.http import db, settings_of
from crm.pages.render import page
from crm.volunteers import hours as hours_service
from crm.volunteers import portal, signups
from crm.volunteers.schemas import HoursCreate, HoursPublic, PortalSignupRequest, PortalView, SignupPublic

Req = Request[Any, Any, Any]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _problem(exc: portal.LinkProblem, request: Req) -> Response[str]:
    return page("link_problem.html", {"reason": exc.reason}, status_code=410 if exc.reason == "expired" else 400,
                settings=settings_of(request))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class PortalController(Controller):
    path = "/volunteer"
    tags = ["pages"]
    include_in_schema = False

    @get("/{token:str}", sync_to_thread=True)
    def show(self, request: Req, token: str, notice: str | None = None) -> Response[str]:
        return self._page(request, token, notice=notice)

    def _page(self, request: Req, token: str, *, notice: str | None = None, error: str | None = None,
              status_code: int = 200) -> Response[str]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                vol, contact = portal.open_token(session, settings, token)
                ctx = portal.view(session, settings, vol, contact)
        except portal.LinkProblem as exc:
            return _problem(exc, request)
        return page("volunteer.html", {**ctx, "token": token, "notice": notice, "error": error},
                    status_code=status_code, language=contact.language, settings=settings_of(request))

    def _act(self, request: Req, token: str, action: Any, notice: str) -> Response[Any]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                vol, _ = portal.open_token(session, settings, token)
                action(session, settings, vol)  # its emails are published on commit
        except portal.LinkProblem as exc:
            return _problem(exc, request)
        except DomainError as exc:
            return self._page(request, token, error=exc.message, status_code=409 if exc.fields else 400)
        return Redirect(f"/volunteer/{token}?notice={notice}", status_code=303)

    @post("/{token:str}/signups", sync_to_thread=True)
    def sign_up(self, request: Req, token: str, data: Form) -> Response[Any]:
        shift_id = _int(data.get("shift_id"))
        return self._act(request, token, lambda s, st, v: signups.sign_up(s, st, shift_id or 0, v.id, "self")[1],
                         "signed-up")

    @get("/{token:str}/signups/{signup_id:int}/cancel", sync_to_thread=True)
    def cancel_page(self, request: Req, token: str, signup_id: int) -> Response[str]:
        return self._action_page(request, token, signup_id, "cancel")

    @post("/{token:str}/signups/{signup_id:int}/cancel", sync_to_thread=True)
    def cancel(self, request: Req, token: str, signup_id: int) -> Response[Any]:
        return self._act(request, token, lambda s, st, v: portal.cancel_own(s, st, v, signup_id), "cancelled")

    @get("/{token:str}/offers/{signup_id:int}", sync_to_thread=True)
    def offer_page(self, request: Req, token: str, signup_id: int) -> Response[str]:
        return self._action_page(request, token, signup_id, "offer")

    @post("/{token:str}/offers/{signup_id:int}", sync_to_thread=True)
    def accept(self, request: Req, token: str, signup_id: int) -> Response[Any]:
        return self._act(request, token, lambda s, st, v: signups.accept_offer(s, st, signup_id, v.contact_id)[1],
                         "accepted")

    @post("/{token:str}/hours", sync_to_thread=True)
    def log_hours(self, request: Req, token: str, data: Form) -> Response[Any]:
        body: dict[str, Any] = {"date": data.get("date"), "hours": _number(data.get("hours")),
                                "note": data.get("note") or ""}
        def act(s: Any, st: Any, v: Any) -> list[int]:
            hours_service.log(s, v.id, body, "self", by_staff=False)
            return []
        return self._act(request, token, act, "hours")

    def _action_page(self, request: Req, token: str, signup_id: int, kind: str) -> Response[str]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                vol, contact = portal.open_token(session, settings, token)
                detail = portal.offer(session, settings, vol, signup_id)
        except portal.LinkProblem as exc:
            return _problem(exc, request)
        return page("volunteer_action.html", {"kind": kind, "detail": detail, "token": token,
                                              "action": f"/volunteer/{token}/{'offers' if kind == 'offer' else 'signups'}"
                                                        f"/{signup_id}{'' if kind == 'offer' else '/cancel'}"},
                    language=contact.language, settings=settings_of(request))


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class PortalApiController(Controller):
    path = "/api/v1/volunteer-portal"
    tags = ["volunteer portal"]

    @get("/{token:str}", sync_to_thread=True)
    def show(self, request: Req, token: str) -> Response[PortalView]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                vol, contact = portal.open_token(session, settings, token)
                return Response(shaped(PortalView, portal.view(session, settings, vol, contact)))
        except portal.LinkProblem as exc:
            return _json_problem(exc)

    @post("/{token:str}/signups", sync_to_thread=True)
    def sign_up(self, request: Req, token: str, data: PortalSignupRequest) -> Response[SignupPublic]:
        shift_id = data.shift_id
        return self._do(request, token, lambda s, st, v: _signup_body(signups.sign_up(s, st, shift_id, v.id, "self")),
                        201)

    @delete("/{token:str}/signups/{signup_id:int}", status_code=200, sync_to_thread=True)
    def cancel(self, request: Req, token: str, signup_id: int) -> Response[SignupPublic]:
        def act(s: Any, st: Any, v: Any) -> tuple[dict[str, Any], list[int]]:
            ids = portal.cancel_own(s, st, v, signup_id)
            return signups.signup_dict(portal.own_signup(s, v, signup_id)), ids
        return self._do(request, token, act, 200)

    @post("/{token:str}/hours", sync_to_thread=True)
    def log_hours(self, request: Req, token: str, data: HoursCreate) -> Response[HoursPublic]:
        fields = present(data)
        return self._do(request, token, lambda s, st, v: (
            hours_service.hours_dict(hours_service.log(s, v.id, fields, "self", by_staff=False)), []), 201)

    @staticmethod
    def _do(request: Req, token: str, action: Any, status_code: int) -> Response[Any]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                vol, _ = portal.open_token(session, settings, token)
                body, ids = action(session, settings, vol)
        except portal.LinkProblem as exc:
            return _json_problem(exc)
        return Response(body, status_code=status_code)


def _signup_body(result: tuple[Any, list[int]]) -> tuple[dict[str, Any], list[int]]:
    signup, ids = result
    return signups.signup_dict(signup), ids


def _json_problem(exc: portal.LinkProblem) -> Response[Any]:
    status = 410 if exc.reason == "expired" else 400
    return Response({"status_code": status, "detail": f"link {exc.reason}", "errors": {"token": exc.reason}},
                    status_code=status)
