"""The staff console's pages under /staff/: sign in and out, the dashboard, contacts.

Signed in by a session cookie (crm.staff.sessions), never by the API's Bearer tokens. Every
POST carries the session's CSRF token in a hidden field (the sign-in form a cookie-bound one);
a missing or wrong token is a 403 before anything changes.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect

from crm.console import dashboard, navigation, profile
from crm.console.render import render
from crm.contacts import service as contacts
from crm.contacts.models import ContactStatus
from crm.contacts.schemas import contacts_public
from crm.db import session_scope
from crm.errors import Invalid, NotFound
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.staff import passwords, sessions
from crm.staff.models import StaffRole
from crm.staff.service import has_role

SESSION_COOKIE = "crm_staff_session"
LOGIN_CSRF_COOKIE = "crm_staff_login_csrf"
GENERIC_FAILURE = "That email address and password do not match, or sign-in is paused for a while. Try again later."
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
console_admin = _needs(StaffRole.admin)


def _secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return settings_of(connection).public_base_url.lower().startswith("https://")


def _page(request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any) -> Response[str]:
    who = signed_in(request)
    context.setdefault("title", "Staff console")
    html = render(template, {"who": who, "nav": navigation.links_for(who.staff) if who else [],
                             "current": request.url.path, "csrf_token": who.csrf_token if who else "", **context})
    return Response(html, status_code=status_code, media_type="text/html", headers=HEADERS)


def _check_csrf(request: Request[Any, Any, Any], data: dict[str, str]) -> None:
    who = signed_in(request)
    sent = data.get("csrf_token", "")
    if who is None or not sent or not hmac.compare_digest(sent, who.csrf_token):
        raise PermissionDeniedException("the form's security token is missing or out of date; reload the page")


def _to_login(request: Request[Any, Any, Any], _: NotAuthorizedException) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"{navigation.LOGIN}?next={quote(target, safe='')}", status_code=303)


def _refused(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[str]:
    return _page(request, "error.html", status_code=403, title="Not allowed", heading="Not allowed",
                 message=str(exc.detail))


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[str]:
    return _page(request, "error.html", status_code=404, title="Not found", heading="Not found", message=exc.message)


class ConsoleController(Controller):
    path = navigation.PREFIX
    include_in_schema = False
    exception_handlers = {NotAuthorizedException: _to_login, PermissionDeniedException: _refused,
                          NotFound: _not_found}

    # --- signing in and out -------------------------------------------------------------------

    @get("/login", sync_to_thread=True)
    def login_form(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[str]:  # noqa: A002
        if signed_in(request) is not None:
            return Redirect(navigation.safe_next(next), status_code=303)
        return self._login_page(request, next)

    def _login_page(self, request: Request[Any, Any, Any], next_path: str | None, error: str | None = None,
                    email: str = "") -> Response[str]:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = _page(request, "login.html", status_code=400 if error else 200, title="Sign in",
                         next=navigation.safe_next(next_path), error=error, email=email, login_csrf=token)
        response.cookies.append(Cookie(key=LOGIN_CSRF_COOKIE, value=token, path=navigation.LOGIN, httponly=True,
                                       samesite="strict", secure=_secure(request)))
        return response

    @post("/login", sync_to_thread=True)
    def login(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        cookie, sent = request.cookies.get(LOGIN_CSRF_COOKIE, ""), data.get("csrf_token", "")
        if not cookie or not sent or not hmac.compare_digest(cookie, sent):
            raise PermissionDeniedException("the sign-in form is out of date; reload the page")
        email, password = data.get("email", "").strip(), data.get("password", "")
        client = request.client.host if request.client else "unknown"
        with session_scope(settings_of(request)) as session:
            staff = passwords.check_credentials(session, email, password, client)
            token = sessions.start(session, staff) if staff is not None else None
        if token is None:
            return self._login_page(request, data.get("next"), error=GENERIC_FAILURE, email=email[:320])
        response = Redirect(navigation.safe_next(data.get("next")), status_code=303)
        response.cookies.append(Cookie(key=SESSION_COOKIE, value=token, path=navigation.PREFIX, httponly=True,
                                       samesite="lax", secure=_secure(request)))
        return response

    @post("/logout", guards=[console_viewer], sync_to_thread=True)
    def logout(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        _check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            sessions.end(session, request.cookies.get(SESSION_COOKIE))
        response = Redirect(navigation.LOGIN, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=navigation.PREFIX)
        return response

    # --- pages --------------------------------------------------------------------------------

    @get("/", guards=[console_viewer], sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            counts = dashboard.counts(session)
        return _page(request, "dashboard.html", title="Dashboard", counts=counts)

    @get("/contacts", guards=[console_viewer], sync_to_thread=True)
    def contact_list(self, request: Request[Any, Any, Any], q: str | None = None, status: str | None = None,
                     after: str | None = None) -> Response[str]:
        statuses = [s.value for s in ContactStatus if s != ContactStatus.erased]
        status = status if status in statuses else None
        q = (q or "").strip()[:200] or None
        try:
            after_id = decode_id_cursor(after)
        except Invalid:  # a mangled paging link just starts from the top
            after_id = None
        with session_scope(settings_of(request)) as session:
            rows, more = contacts.search(session, contacts.ContactFilters(q=q, status=status), after_id, PAGE_SIZE)
            items = contacts_public(session, rows)
        next_cursor = encode_cursor(rows[-1].id) if more and rows else None
        return _page(request, "contacts.html", title="Contacts", items=items, q=q or "", status=status or "",
                     statuses=statuses, next_cursor=next_cursor)

    @get("/contacts/{contact_id:int}", guards=[console_viewer], sync_to_thread=True)
    def contact_profile(self, request: Request[Any, Any, Any], contact_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            found = profile.load(session, contact_id)
        name = " ".join(p for p in (found.contact.first_name, found.contact.last_name) if p)
        return _page(request, "contact.html", title=f"Contact {name or found.contact.email or contact_id}",
                     profile=found, name=name)

    @get("/{section:str}", guards=[console_viewer], sync_to_thread=True)
    def coming(self, request: Request[Any, Any, Any], section: str) -> Response[str]:
        """The sections a later step builds: each says so, so no navigation link is a 404."""
        link = navigation.COMING.get(f"{navigation.PREFIX}/{section}")
        if link is None:
            raise NotFound(f"no console page /staff/{section}")
        who = signed_in(request)
        if link.admin_only and (who is None or not has_role(who.staff, StaffRole.admin)):
            raise PermissionDeniedException("this page needs the admin role")
        return _page(request, "coming.html", title=link.name, heading=link.name)
