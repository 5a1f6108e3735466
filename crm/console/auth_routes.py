"""Signing in (password, then the second factor when the member has or needs one), invitations,
the member's own account page (second factor, sign out everywhere) and signing out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from crm.console import navigation
from crm.console.web import (
    SESSION_COOKIE,
    ConsoleSection,
    Form,
    check_csrf,
    console_viewer,
    page,
    secure,
    session_store,
    signed_in,
)
from crm.db import session_scope
from crm.errors import Invalid
from crm.http import settings_of
from crm.staff import invites, passwords, totp
from crm.staff.models import Staff
from crm.tokens import TokenError, make_token, read_token

LOGIN_CSRF_COOKIE = "crm_staff_login_csrf"
PENDING_COOKIE = "crm_staff_pending"  # the right password was typed; the second factor is next
PENDING_SECONDS = 300
CODE_PATH = f"{navigation.LOGIN}/code"
GENERIC_FAILURE = "That email address and password do not match, or sign-in is paused for a while. Try again later."
CODE_FAILURE = "That code is not right, or sign-in is paused for a while. Type the newest code from your app."


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _login_csrf(request: Request[Any, Any, Any]) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def _with_login_csrf(request: Request[Any, Any, Any], response: Response[Any], token: str) -> Response[Any]:
    response.cookies.append(Cookie(key=LOGIN_CSRF_COOKIE, value=token, path=navigation.LOGIN, httponly=True,
                                   samesite="strict", secure=secure(request)))
    return response


def _check_login_csrf(request: Request[Any, Any, Any], data: dict[str, str]) -> None:
    cookie, sent = request.cookies.get(LOGIN_CSRF_COOKIE, ""), data.get("csrf_token", "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise PermissionDeniedException("the sign-in form is out of date; reload the page")


def _login_page(request: Request[Any, Any, Any], next_path: str | None, error: str | None = None,
                email: str = "") -> Response[str]:
    token = _login_csrf(request)
    response = page(request, "login.html", status_code=400 if error else 200, title="Sign in",
                    next=navigation.safe_next(next_path), error=error, email=email, login_csrf=token)
    return _with_login_csrf(request, response, token)


def _signed_in_response(request: Request[Any, Any, Any], token: str, next_path: str | None) -> Response[Any]:
    response = Redirect(navigation.safe_next(next_path), status_code=303)
    response.cookies.append(Cookie(key=SESSION_COOKIE, value=token, path=navigation.PREFIX, httponly=True,
                                   samesite="lax", secure=secure(request)))
    response.delete_cookie(PENDING_COOKIE, path=navigation.LOGIN)
    return response


def _to_second_step(request: Request[Any, Any, Any], staff: Staff, next_path: str | None) -> Response[Any]:
    assert staff.id is not None
    pending = make_token(settings_of(request).resolved_secret("secret_key"), staff.id, "staff-login",
                         PENDING_SECONDS, extra=hashlib.sha256((staff.password_hash or "").encode()).hexdigest()[:16])
    response = Redirect(f"{CODE_PATH}?next={quote(navigation.safe_next(next_path), safe='')}", status_code=303)
    response.cookies.append(Cookie(key=PENDING_COOKIE, value=pending, path=navigation.LOGIN, httponly=True,
                                   samesite="strict", secure=secure(request), max_age=PENDING_SECONDS))
    return response


def _pending_staff(request: Request[Any, Any, Any], session: Any) -> Staff | None:
    """The member who typed the right password in the last few minutes (and has not changed it since)."""
    try:
        claims = read_token(settings_of(request).verification_secrets(), request.cookies.get(PENDING_COOKIE, ""),
                            "staff-login")
    except TokenError:
        return None
    staff = session.get(Staff, claims.contact_id) if 0 < claims.contact_id < 2**31 else None
    if staff is None or not staff.active:
        return None
    expected = hashlib.sha256((staff.password_hash or "").encode()).hexdigest()[:16]
    return staff if hmac.compare_digest(expected, claims.extra) else None


def _start(request: Request[Any, Any, Any], session: Any, staff: Staff) -> str:
    return session_store(request).start(session, staff, idle_hours=settings_of(request).staff_session_hours)


class SignInController(ConsoleSection):
    @get("/login", sync_to_thread=True)
    def login_form(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[str]:  # noqa: A002
        if signed_in(request) is not None:
            return Redirect(navigation.safe_next(next), status_code=303)
        return _login_page(request, next)

    @post("/login", sync_to_thread=True)
    def login(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        _check_login_csrf(request, data)
        email, password = data.get("email", "").strip(), data.get("password", "")
        with session_scope(settings_of(request)) as session:
            staff = passwords.check_credentials(session, email, password, _client(request))
            if staff is None:
                return _login_page(request, data.get("next"), error=GENERIC_FAILURE, email=email[:320])
            if staff.totp_enabled or totp.required_for(session, staff):
                return _to_second_step(request, staff, data.get("next"))
            token = _start(request, session, staff)
        return _signed_in_response(request, token, data.get("next"))

    @get("/login/code", sync_to_thread=True)
    def code_form(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:  # noqa: A002
        with session_scope(settings_of(request)) as session:
            staff = _pending_staff(request, session)
            if staff is None:
                return Redirect(f"{navigation.LOGIN}?next={quote(navigation.safe_next(next), safe='')}", status_code=303)
            if not staff.totp_enabled and not staff.totp_secret:
                totp.begin_enrolment(session, staff)
            return self._code_page(request, staff, next)

    def _code_page(self, request: Request[Any, Any, Any], staff: Staff, next_path: str | None,
                   error: str | None = None) -> Response[str]:
        token = _login_csrf(request)
        enrol = not staff.totp_enabled
        response = page(request, "login_code.html", status_code=400 if error else 200,
                        title="Set up two-step sign-in" if enrol else "Two-step sign-in", enrol=enrol,
                        secret=staff.totp_secret if enrol else "", uri=totp.uri(staff) if enrol else "",
                        next=navigation.safe_next(next_path), error=error, login_csrf=token)
        return _with_login_csrf(request, response, token)

    @post("/login/code", sync_to_thread=True)
    def code(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        _check_login_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            staff = _pending_staff(request, session)
            if staff is None:
                return Redirect(f"{navigation.LOGIN}?next={quote(navigation.safe_next(data.get('next')), safe='')}", status_code=303)
            code, client = data.get("code", ""), _client(request)
            ok = not passwords.locked(session, staff.email, client) and (
                totp.verify(session, staff, code) if staff.totp_enabled else totp.confirm_enrolment(session, staff, code))
            if not ok:
                passwords.record_failure(session, staff.email, client)
                return self._code_page(request, staff, data.get("next"), error=CODE_FAILURE)
            passwords.clear_failures(session, staff.email)
            token = _start(request, session, staff)
        return _signed_in_response(request, token, data.get("next"))

    @post("/logout", guards=[console_viewer], sync_to_thread=True)
    def logout(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            session_store(request).end(session, request.cookies.get(SESSION_COOKIE))
        response = Redirect(navigation.LOGIN, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=navigation.PREFIX)
        return response


def _invite_csrf(request: Request[Any, Any, Any], token: str) -> str:
    # The form can only be posted by someone holding the link, so the link itself is the secret.
    key = settings_of(request).resolved_secret("secret_key").encode()
    return hmac.new(key, f"staff-invite-form:{token}".encode(), hashlib.sha256).hexdigest()


class InvitationController(ConsoleSection):
    @get("/invite/{token:str}", sync_to_thread=True)
    def invitation(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            try:
                staff = invites.find(session, settings_of(request), token)
            except invites.InvitationInvalid:
                return _invite_gone(request)
            return page(request, "invite.html", title="Choose your password", email=staff.email,
                        token=token, form_token=_invite_csrf(request, token), error=None,
                        min_length=passwords.MIN_LENGTH)

    @post("/invite/{token:str}", sync_to_thread=True)
    def accept(self, request: Request[Any, Any, Any], token: str, data: Form) -> Response[Any]:
        if not hmac.compare_digest(data.get("csrf_token", ""), _invite_csrf(request, token)):
            raise PermissionDeniedException("the form is out of date; open the link from your email again")
        with session_scope(settings_of(request)) as session:
            try:
                staff = invites.accept(session, settings_of(request), token, data.get("password", ""),
                                       data.get("password_again", ""))
            except invites.InvitationInvalid:
                return _invite_gone(request)
            except Invalid as exc:
                return _password_refused(request, session, token, exc)
            if staff.totp_enabled or totp.required_for(session, staff):
                return _to_second_step(request, staff, None)
            session_token = _start(request, session, staff)
        return _signed_in_response(request, session_token, None)


def _password_refused(request: Request[Any, Any, Any], session: Any, token: str, exc: Invalid) -> Response[str]:
    """The invitation form again, saying why the password was refused."""
    found = invites.find(session, settings_of(request), token)
    return page(request, "invite.html", status_code=400, title="Choose your password",
                email=found.email, token=token, form_token=_invite_csrf(request, token),
                error=next(iter((exc.fields or {"password": exc.message}).values())),
                min_length=passwords.MIN_LENGTH)


def _invite_gone(request: Request[Any, Any, Any]) -> Response[str]:
    return page(request, "error.html", status_code=410, title="Invitation link not valid",
                heading="Invitation link not valid",
                message="This invitation link has expired, was already used, or was replaced by a newer one. "
                        "Ask an admin to send you a new invitation.")


@contextmanager
def _my_row(request: Request[Any, Any, Any]) -> Iterator[tuple[Any, Staff]]:
    """The signed-in member's own row, in a unit of work."""
    who = signed_in(request)
    assert who is not None
    with session_scope(settings_of(request)) as session:
        staff = session.get(Staff, who.staff.id)
        assert staff is not None
        yield session, staff


class AccountController(ConsoleSection):
    """The signed-in member's own settings: the second factor, and signing out everywhere."""

    @get("/account", guards=[console_viewer], sync_to_thread=True)
    def account(self, request: Request[Any, Any, Any]) -> Response[str]:
        return self._page(request)

    def _page(self, request: Request[Any, Any, Any], status_code: int = 200, **extra: Any) -> Response[str]:
        with _my_row(request) as (session, staff):
            return page(request, "account.html", status_code=status_code, title="Your account", staff=staff,
                        required=totp.required_for(session, staff), enrolling=extra.pop("enrolling", False),
                        uri=totp.uri(staff) if staff.totp_secret else "", **{"error": None, "notice": None, **extra})

    @post("/account/two-step/start", guards=[console_viewer], sync_to_thread=True)
    def start_two_step(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        with _my_row(request) as (session, staff):
            totp.begin_enrolment(session, staff)
        return self._page(request, enrolling=True)

    @post("/account/two-step/confirm", guards=[console_viewer], sync_to_thread=True)
    def confirm_two_step(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        with _my_row(request) as (session, staff):
            ok = totp.confirm_enrolment(session, staff, data.get("code", ""))
        if not ok:
            return self._page(request, status_code=400, enrolling=True,
                              error="That code is not right. Type the newest code your app shows.")
        return self._page(request, notice="Two-step sign-in is on. You will be asked for a code when you sign in.")

    @post("/account/two-step/remove", guards=[console_viewer], sync_to_thread=True)
    def remove_two_step(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        with _my_row(request) as (session, staff):
            if totp.required_for(session, staff):
                raise PermissionDeniedException("two-step sign-in is required for you; an admin can change that")
            totp.remove(session, staff)
        return self._page(request, notice="Two-step sign-in is off.")

    @post("/account/sign-out-everywhere", guards=[console_viewer], sync_to_thread=True)
    def sign_out_everywhere(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        check_csrf(request, data)
        with _my_row(request) as (session, staff):
            assert staff.id is not None
            session_store(request).end_all(session, staff.id)
        response = Redirect(navigation.LOGIN, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=navigation.PREFIX)
        return response
