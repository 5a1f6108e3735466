"""Signing in and out of the console."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

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
    signed_in,
)
from crm.db import session_scope
from crm.http import settings_of
from crm.staff import passwords, sessions

LOGIN_CSRF_COOKIE = "crm_staff_login_csrf"
GENERIC_FAILURE = "That email address and password do not match, or sign-in is paused for a while. Try again later."


def _login_page(request: Request[Any, Any, Any], next_path: str | None, error: str | None = None,
                email: str = "") -> Response[str]:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = page(request, "login.html", status_code=400 if error else 200, title="Sign in",
                    next=navigation.safe_next(next_path), error=error, email=email, login_csrf=token)
    response.cookies.append(Cookie(key=LOGIN_CSRF_COOKIE, value=token, path=navigation.LOGIN, httponly=True,
                                   samesite="strict", secure=secure(request)))
    return response


class SignInController(ConsoleSection):
    @get("/login", sync_to_thread=True)
    def login_form(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[str]:  # noqa: A002
        if signed_in(request) is not None:
            return Redirect(navigation.safe_next(next), status_code=303)
        return _login_page(request, next)

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
            return _login_page(request, data.get("next"), error=GENERIC_FAILURE, email=email[:320])
        response = Redirect(navigation.safe_next(data.get("next")), status_code=303)
        response.cookies.append(Cookie(key=SESSION_COOKIE, value=token, path=navigation.PREFIX, httponly=True,
                                       samesite="lax", secure=secure(request)))
        return response

    @post("/logout", guards=[console_viewer], sync_to_thread=True)
    def logout(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            sessions.end(session, request.cookies.get(SESSION_COOKIE))
        response = Redirect(navigation.LOGIN, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=navigation.PREFIX)
        return response
