"""Pages a person reaches from an email: confirm, preference centre (HTML and JSON), unsubscribe, fresh links."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from litestar import Controller, HttpMethod, Request, Response, get, post, put, route
from litestar.background_tasks import BackgroundTask
from sqlmodel import Session

from crm.bodies import present, shaped
from crm.contacts.models import Contact
from crm.contacts.service import normalize_email
from crm.db import today
from crm.errors import Invalid
from crm.http import db, error_body, request_meta, settings_of
from crm.pages.render import page, pick_language
from crm.preferences import service, views
from crm.preferences.schemas import Preferences, PreferencesChange
from crm.public_guard import public_json_posts, public_posts
from crm.tokens import Purpose

PUBLIC_BODY_LIMIT = 64 * 1024
T = TypeVar("T")
Req = Request[Any, Any, Any]


def _today(request: Req) -> dt.date:
    return today(settings_of(request))


def _status(problem: service.LinkProblem) -> int:
    return {"expired": 410, "sample": 200}.get(problem.reason, 400)


SAMPLE_NOTE = "this is a sample link from a test email: it belongs to no one and changes nothing"


def link_problem_page(request: Req, problem: service.LinkProblem) -> Response[str]:
    language = pick_language(None, request.headers.get("accept-language"))
    if problem.reason == "sample":
        return page("sample_link.html", {}, status_code=200, language=language, settings=settings_of(request))
    return page("link_problem.html", {"reason": problem.reason}, status_code=_status(problem), language=language, settings=settings_of(request))


def _html(request: Req, fn: Callable[[], tuple[str, dict[str, Any], str, list[int], int]]) -> Response[str]:
    """Run a page's work in one transaction (committed before answering); a bad link gets the plain page."""
    try:
        name, ctx, language, _ids, status = fn()
    except service.LinkProblem as exc:
        return link_problem_page(request, exc)
    return page(name, ctx, language=language, status_code=status, settings=settings_of(request))


async def _in_thread(fn: Callable[[], T]) -> T:
    return await to_thread.run_sync(fn)


Build = Callable[[Session, Contact], tuple[str, dict[str, Any], list[int], int]]


def _person_page(request: Req, token: str, purpose: Purpose, build: Build) -> Response[str]:
    """The page of the person a token names, built in one transaction committed before the answer."""
    settings = settings_of(request)

    def work() -> tuple[str, dict[str, Any], str, list[int], int]:
        with db(request) as session:
            contact = service.contact_from_token(session, settings, token, purpose)
            name, ctx, ids, status = build(session, contact)
            return name, ctx, contact.language, ids, status

    return _html(request, work)


class ConfirmController(Controller):
    path = "/confirm"
    tags = ["pages"]
    include_in_schema = False

    @get("/{token:str}", sync_to_thread=True)
    def confirm(self, request: Req, token: str) -> Response[str]:
        settings = settings_of(request)

        def work() -> tuple[str, dict[str, Any], str, list[int], int]:
            with db(request) as session:
                result, ids = service.confirm(session, settings, token, request_meta(request))
                return "confirm.html", views.confirm_page(session, settings, result), result.contact.language, ids, 200

        return _html(request, work)


class PreferencesController(Controller):
    path = "/preferences"
    middleware = [public_posts]
    tags = ["pages"]
    include_in_schema = False
    request_max_body_size = PUBLIC_BODY_LIMIT

    @get("/{token:str}", sync_to_thread=True)
    def show(self, request: Req, token: str) -> Response[str]:
        return _person_page(request, token, "preferences", lambda session, contact: (
            "preferences.html", views.preferences_page(session, contact, request.url.path, _today(request)), [], 200))

    @post("/{token:str}", status_code=200)
    async def save(self, request: Req, token: str) -> Response[str]:
        form = await request.form()
        data = {key: [v for v in form.getall(key) if isinstance(v, str)] for key in form}
        build = _save_form(request, data)
        return await _in_thread(lambda: _person_page(request, token, "preferences", build))


def _save_form(request: Req, data: dict[str, list[str]]) -> Build:
    """The preference form's work for its person: leave everything, or check the changes and save them."""
    settings, meta, path = settings_of(request), request_meta(request), request.url.path

    def build(session: Session, contact: Contact) -> tuple[str, dict[str, Any], list[int], int]:
        origin = service.origin_of("preferences", meta)
        if (data.get("action") or ["save"])[0] == "unsubscribe-all":
            changes = service.unsubscribe_everything(session, settings, contact, origin)
            return "preferences.html", views.preferences_page(session, contact, path, _today(request),
                                                              changes=changes), [], 200
        try:
            update = service.parse_form(session, contact, data, _today(request))
        except Invalid as exc:
            return "preferences.html", views.preferences_page(session, contact, path, _today(request),
                                                              errors=exc.fields), [], 400
        result = service.save(session, settings, contact, update, origin)
        ctx = views.preferences_page(session, contact, path, _today(request), result=result)
        return "preferences.html", ctx, result.outbox_ids, 200

    return build


def _explain_change(session: Any, settings: Any, raw: dict[str, Any], params: dict[str, Any]) -> None:
    contact = service.contact_from_token(session, settings, params["token"], "preferences")
    service.parse_json(session, contact, raw, today(settings))


class PreferencesApiController(Controller):
    """The preference centre as JSON, for the website's own UI."""

    path = "/api/v1/preferences"
    middleware = [public_json_posts]
    tags = ["public"]
    request_max_body_size = PUBLIC_BODY_LIMIT

    @staticmethod
    def _problem(exc: service.LinkProblem) -> Response[dict[str, Any]]:
        status = _status(exc)
        if exc.reason == "sample":
            return Response({"sample": True, "detail": SAMPLE_NOTE}, headers={"Cache-Control": "no-store"})
        return Response(error_body(status, f"this link cannot be used: {exc.reason}", {"token": exc.reason}),
                        status_code=status)

    @get("/{token:str}", sync_to_thread=True)
    def read(self, request: Req, token: str) -> Response[Preferences]:
        try:
            with db(request) as session:
                contact = service.contact_from_token(session, settings_of(request), token, "preferences")
                return Response(shaped(Preferences, service.preferences_of(session, contact)),
                                headers={"Cache-Control": "no-store"})
        except service.LinkProblem as exc:
            return self._problem(exc)

    @put("/{token:str}", sync_to_thread=True, opt={"explain": _explain_change})
    def update(self, request: Req, token: str, data: PreferencesChange) -> Response[Preferences]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                contact = service.contact_from_token(session, settings, token, "preferences")
                update = service.parse_json(session, contact, present(data), _today(request))
                result = service.save(session, settings, contact, update,
                                      service.origin_of("preferences", request_meta(request)))
                body = {**service.preferences_of(session, contact),
                        "changed": sorted({c.list_key and f"lists.{c.list_key}" or c.field for c in result.changes}),
                        "check_inbox": result.check_inbox}
        except service.LinkProblem as exc:
            return self._problem(exc)
        return Response(shaped(Preferences, body), headers={"Cache-Control": "no-store"})


class UnsubscribeController(Controller):
    """RFC 8058 one-click: any POST to the link unsubscribes at once; GET and HEAD never change anything."""

    path = "/unsubscribe"
    tags = ["pages"]
    include_in_schema = False
    request_max_body_size = PUBLIC_BODY_LIMIT

    @route("/{token:str}", http_method=[HttpMethod.GET, HttpMethod.HEAD], sync_to_thread=True)
    def show(self, request: Req, token: str) -> Response[str]:
        settings = settings_of(request)
        return _person_page(request, token, "unsubscribe", lambda _session, contact: (
            "unsubscribe.html", views.unsubscribe_page(settings, contact, request.url.path, done=False), [], 200))

    @post("/{token:str}", status_code=200, sync_to_thread=True)
    def one_click(self, request: Req, token: str) -> Response[str]:
        # The body (List-Unsubscribe=One-Click, urlencoded or multipart) is not needed to honour the
        # request, so it is never parsed: nothing a mail provider sends can make this fail.
        settings = settings_of(request)

        def build(session: Session, contact: Contact) -> tuple[str, dict[str, Any], list[int], int]:
            service.unsubscribe_everything(session, settings, contact,
                                           service.origin_of("one-click", request_meta(request)))
            return "unsubscribe.html", views.unsubscribe_page(settings, contact, request.url.path, done=True), [], 200

        return _person_page(request, token, "unsubscribe", build)


async def _fresh_link_after_answer(request: Req, email: Any) -> None:
    settings = settings_of(request)

    def work() -> list[int]:
        with db(request) as session:
            return service.send_fresh_link(session, settings, email)

    # The outbox publishes its own wake-up when this commits.
    with contextlib.suppress(Invalid):
        await _in_thread(work)


class LinkController(Controller):
    """"Email me a fresh link": the answer is the same whether or not the address is known."""

    path = "/links"
    middleware = [public_posts]
    tags = ["pages"]
    include_in_schema = False
    request_max_body_size = PUBLIC_BODY_LIMIT

    @get("/resend")
    async def form(self, request: Req) -> Response[str]:
        return page("resend.html", {"done": False, "error": False},
                    language=pick_language(None, request.headers.get("accept-language")), settings=settings_of(request))

    @post("/resend", status_code=200)
    async def resend(self, request: Req) -> Response[str]:
        language = pick_language(None, request.headers.get("accept-language"))
        data = await _posted(request)
        if data.get("website"):
            return _resend_page(request, language, done=True)  # honeypot
        if not _is_address(data.get("email")):
            return _resend_page(request, language, error=True, status_code=400)
        response = _resend_page(request, language, done=True)
        # The lookup runs after the answer has gone, so a known address is not measurably slower
        # than an unknown one (SPEC 4: answers never reveal whether an address is known).
        response.background = BackgroundTask(_fresh_link_after_answer, request, data.get("email"))
        return response


async def _posted(request: Req) -> dict[str, Any]:
    """The resend form's fields, posted as JSON (the website's own UI) or as a form."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        return body if isinstance(body, dict) else {}
    return dict(await request.form())


def _is_address(value: Any) -> bool:
    try:
        normalize_email(value if isinstance(value, str) else "")
    except Invalid:
        return False
    return True


def _resend_page(request: Req, language: str, *, done: bool = False, error: bool = False,
                 status_code: int = 200) -> Response[str]:
    return page("resend.html", {"done": done, "error": error}, language=language, status_code=status_code,
                settings=settings_of(request))
