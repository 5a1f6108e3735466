"""What every console page shares: who is signed in, role guards, CSRF, rendering, error pages.

Signed in by a session cookie (crm.staff.sessions: the database, or Redis when CRM_REDIS_URL is
set), never by the API's Bearer tokens. Every POST carries the session's CSRF token in a hidden
field named `csrf_token` (the sign-in form a cookie-bound one); a missing or wrong token is a 403
before anything changes.

A form posted after the session expired is stashed (crm.console.stash) and put back into the same
form once the person has signed in again (`?restore=` on the page they return to). Any other
failure is a plain HTML page; an unexpected one is logged with its traceback and shown as a 500
page that says nothing of the internals.

A section of the console is a `ConsoleSection` subclass in its own module, listed in
crm.console.sections; its handlers call `page(...)` and `check_csrf(...)` from here.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from litestar import Controller, Request, Response
from litestar.concurrency import sync_to_thread
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect

from crm.console import labels, navigation, stash
from crm.console.refill import refill
from crm.console.render import render
from crm.db import session_scope
from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from crm.http import settings_of
from crm.logredact import redact
from crm.staff import sessions
from crm.staff.models import StaffRole
from crm.staff.service import has_role

log = logging.getLogger(__name__)

SESSION_COOKIE = "crm_staff_session"
PAGE_SIZE = 50
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# A form with repeated names (checkbox groups): each value a string, or a list when repeated.
MultiForm = Annotated[dict[str, str | list[str]], Body(media_type=RequestEncodingType.URL_ENCODED)]
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff"}
RESTORE = "restore"


def values(data: dict[str, Any], name: str) -> list[str]:
    """Every value a MultiForm field carried (none, one or many)."""
    raw = data.get(name)
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else [str(v) for v in raw]


def session_store(connection: ASGIConnection[Any, Any, Any, Any]) -> sessions.DatabaseSessions | sessions.RedisSessions:
    settings = settings_of(connection)
    return sessions.store_for(settings.redis_url, settings.instance)


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> sessions.SignedIn | None:
    if "crm_console" in connection.scope:  # looked up once per request, signed in or not
        return connection.scope["crm_console"]  # type: ignore[typeddict-item,no-any-return]
    settings = settings_of(connection)
    with session_scope(settings) as session:
        found = session_store(connection).resume(session, connection.cookies.get(SESSION_COOKIE),
                                                 settings.staff_session_hours)
        if found is not None:
            session.expunge(found.staff)
    connection.scope["crm_console"] = found  # type: ignore[typeddict-unknown-key]
    return found


async def _stash_expired_form(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A form posted with a session cookie that no longer works: keep its fields for after sign-in.

    Only when the browser sent the (dead) cookie: it is SameSite=Lax, so another site's forged
    POST never carries it and can never plant values in a form.
    """
    if connection.scope.get("method") != "POST" or not connection.cookies.get(SESSION_COOKIE):
        return
    if not connection.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return
    body = await connection.body()  # type: ignore[attr-defined]
    fields: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, []).append(value)
    connection.scope["crm_restore"] = await sync_to_thread(  # type: ignore[typeddict-unknown-key]
        _stash, settings_of(connection), connection.url.path, fields)


def _stash(settings: Any, path: str, fields: dict[str, list[str]]) -> str:
    with session_scope(settings) as session:
        return stash.put(session, path, fields)


def _needs(role: StaffRole):  # type: ignore[no-untyped-def]
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        # The session lookup is a database read: off the event loop, like the API's guards.
        who = await sync_to_thread(signed_in, connection)
        if who is None:
            await _stash_expired_form(connection)
            raise NotAuthorizedException("sign in first")
        if not has_role(who.staff, role):
            raise PermissionDeniedException(f"this page needs the {role.value} role")
        if connection.query_params.get(RESTORE):
            # Taken here, before the handler opens its own database session (SQLite allows one writer).
            connection.scope["crm_restored"] = await sync_to_thread(_restored, connection)  # type: ignore[typeddict-unknown-key]

    guard.__name__ = f"console_{role.value}"
    return guard


console_viewer = _needs(StaffRole.viewer)
console_editor = _needs(StaffRole.editor)
console_admin = _needs(StaffRole.admin)


def staff_email(request: Request[Any, Any, Any]) -> str:
    """The signed-in member's address, for audit rows and `actor` fields (the route's guard signed them in)."""
    who = signed_in(request)
    assert who is not None
    return who.staff.email


def can(request: Request[Any, Any, Any], role: StaffRole) -> bool:
    """For templates: offer a control only to a role that may use it."""
    who = signed_in(request)
    return who is not None and has_role(who.staff, role)


def secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return settings_of(connection).public_base_url.lower().startswith("https://")


def _restored(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, dict[str, list[str]]] | None:
    key = connection.query_params.get(RESTORE)
    if not key:
        return None
    with session_scope(settings_of(connection)) as session:
        row = stash.take(session, key)
        return (row.path, dict(row.fields)) if row is not None else None


def page(request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any) -> Response[str]:
    who = signed_in(request)
    restored = request.scope.get("crm_restored") if who is not None else None  # type: ignore[typeddict-item]
    context.setdefault("title", "Staff console")
    html = render(template, {
        "who": who, "nav": navigation.links_for(who.staff) if who else [], "current": request.url.path,
        "csrf_token": who.csrf_token if who else "",
        "can_edit": bool(who and has_role(who.staff, StaffRole.editor)),
        "is_admin": bool(who and has_role(who.staff, StaffRole.admin)),
        "console_labels": labels, "when": lambda v: labels.when(v, settings_of(request).timezone),
        "restored": restored is not None, **context})
    if restored is not None:
        html = refill(html, *restored)
    return Response(html, status_code=status_code, media_type="text/html", headers=HEADERS)


def check_csrf(request: Request[Any, Any, Any], data: dict[str, Any]) -> None:
    who = signed_in(request)
    sent = data.get("csrf_token", "")
    if who is None or not isinstance(sent, str) or not sent or not hmac.compare_digest(sent, who.csrf_token):
        raise PermissionDeniedException("the form's security token is missing or out of date; reload the page")


def _return_to(request: Request[Any, Any, Any]) -> str:
    """Where sign-in leads back to: the page itself, or for a form post the page the form was on."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method == "POST":
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = not referer.netloc or referer.netloc == request.url.netloc
        from_page = referer.path + (f"?{referer.query}" if referer.query else "")
        target = from_page if same_site and navigation.safe_next(from_page) == from_page else request.url.path
    key = request.scope.get("crm_restore")  # type: ignore[typeddict-item]
    if key:
        kept = [(k, v) for k, v in parse_qsl(urlsplit(target).query) if k != RESTORE]
        target = urlsplit(target).path + "?" + urlencode([*kept, (RESTORE, key)])
    return target


def _to_login(request: Request[Any, Any, Any], _: NotAuthorizedException) -> Response[Any]:
    return Redirect(f"{navigation.LOGIN}?next={quote(_return_to(request), safe='')}", status_code=303)


def error_page(request: Request[Any, Any, Any], status: int, heading: str, message: str) -> Response[str]:
    try:
        return page(request, "error.html", status_code=status, title=heading, heading=heading, message=message)
    except Exception:  # noqa: BLE001 - the error page must not fail in turn (e.g. the database is down)
        log.exception("the console's error page failed")
        html = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{heading}</title></head>"
                f"<body><main><h1>{heading}</h1><p>Something went wrong. Try again in a minute.</p>"
                "<p><a href=\"/staff/\">Go to the dashboard</a></p></main></body></html>")
        return Response(html, status_code=status, media_type="text/html", headers=HEADERS)


def _refused(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[str]:
    return error_page(request, 403, "Not allowed", str(exc.detail))


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[str]:
    return error_page(request, 404, "Not found", exc.message)


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[str]:
    status, heading = {Invalid: (400, "Could not do that"), Conflict: (409, "Could not do that"),
                       Forbidden: (403, "Not allowed")}.get(type(exc), (400, "Could not do that"))
    return error_page(request, status, heading, exc.message)


def _any_error(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        heading = {404: "Not found", 405: "Not allowed", 413: "Too large"}.get(exc.status_code, "Could not do that")
        return error_page(request, exc.status_code, heading, str(exc.detail))
    log.exception("console error on %s %s", request.method, redact(request.url.path), exc_info=exc)
    return error_page(request, 500, "Something went wrong",
                      "The page could not be shown because of a fault on our side; it has been logged. "
                      "Try again in a minute, or go back.")


def _who_first(request: Request[Any, Any, Any]) -> None:
    # Before the handler opens its own database session: page() then never needs a second one
    # (SQLite allows one writer, and every transaction there is BEGIN IMMEDIATE).
    signed_in(request)


class ConsoleSection(Controller):
    """Base of every console controller: under /staff, not in the API docs, errors as pages."""

    path = navigation.PREFIX
    include_in_schema = False
    before_request = _who_first
    exception_handlers = {NotAuthorizedException: _to_login, PermissionDeniedException: _refused,
                          NotFound: _not_found, DomainError: _domain_error, Exception: _any_error}
