"""What every console page shares: who is signed in, role guards, CSRF, rendering, error pages.

Signed in by a session cookie (crm.staff.sessions), never by the API's Bearer tokens. Every
POST carries the session's CSRF token in a hidden field named `csrf_token` (the sign-in form a
cookie-bound one); a missing or wrong token is a 403 before anything changes.

A section of the console is a `ConsoleSection` subclass in its own module, listed in
crm.console.sections; its handlers call `page(...)` and `check_csrf(...)` from here.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect

from crm.console import navigation
from crm.console.render import render
from crm.db import session_scope
from crm.errors import NotFound
from crm.http import settings_of
from crm.staff import sessions
from crm.staff.models import StaffRole
from crm.staff.service import has_role

SESSION_COOKIE = "crm_staff_session"
PAGE_SIZE = 50
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff"}


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> sessions.SignedIn | None:
    cached = connection.scope.get("crm_console")  # type: ignore[typeddict-item]
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    settings = settings_of(connection)
    with session_scope(settings) as session:
        found = sessions.resume(session, connection.cookies.get(SESSION_COOKIE), settings.staff_session_hours)
        if found is not None:
            session.expunge(found.staff)
    connection.scope["crm_console"] = found  # type: ignore[typeddict-unknown-key]
    return found


def _needs(role: StaffRole):  # type: ignore[no-untyped-def]
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        who = signed_in(connection)
        if who is None:
            raise NotAuthorizedException("sign in first")
        if not has_role(who.staff, role):
            raise PermissionDeniedException(f"this page needs the {role.value} role")

    guard.__name__ = f"console_{role.value}"
    return guard


console_viewer = _needs(StaffRole.viewer)
console_editor = _needs(StaffRole.editor)
console_admin = _needs(StaffRole.admin)


def can(request: Request[Any, Any, Any], role: StaffRole) -> bool:
    """For templates: offer a control only to a role that may use it."""
    who = signed_in(request)
    return who is not None and has_role(who.staff, role)


def secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return settings_of(connection).public_base_url.lower().startswith("https://")


def page(request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any) -> Response[str]:
    who = signed_in(request)
    context.setdefault("title", "Staff console")
    html = render(template, {
        "who": who, "nav": navigation.links_for(who.staff) if who else [], "current": request.url.path,
        "csrf_token": who.csrf_token if who else "",
        "can_edit": bool(who and has_role(who.staff, StaffRole.editor)),
        "is_admin": bool(who and has_role(who.staff, StaffRole.admin)), **context})
    return Response(html, status_code=status_code, media_type="text/html", headers=HEADERS)


def check_csrf(request: Request[Any, Any, Any], data: dict[str, str]) -> None:
    who = signed_in(request)
    sent = data.get("csrf_token", "")
    if who is None or not sent or not hmac.compare_digest(sent, who.csrf_token):
        raise PermissionDeniedException("the form's security token is missing or out of date; reload the page")


def _to_login(request: Request[Any, Any, Any], _: NotAuthorizedException) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"{navigation.LOGIN}?next={quote(target, safe='')}", status_code=303)


def _refused(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[str]:
    return page(request, "error.html", status_code=403, title="Not allowed", heading="Not allowed",
                message=str(exc.detail))


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[str]:
    return page(request, "error.html", status_code=404, title="Not found", heading="Not found", message=exc.message)


class ConsoleSection(Controller):
    """Base of every console controller: under /staff, not in the API docs, errors as pages."""

    path = navigation.PREFIX
    include_in_schema = False
    exception_handlers = {NotAuthorizedException: _to_login, PermissionDeniedException: _refused,
                          NotFound: _not_found}
