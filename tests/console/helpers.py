"""Signing in to the console the way a browser does: the real form, its hidden token, the cookie."""

from __future__ import annotations

import re
from typing import Any

from crm.db import session_scope
from crm.staff import passwords
from crm.staff.service import create_staff

PASSWORD = "correct horse battery staple"


def make_member(settings: Any, email: str, role: str, password: str = PASSWORD) -> None:
    with session_scope(settings) as s:
        staff, _ = create_staff(s, email, role)
        passwords.set_password(s, staff, password)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD, next_path: str = "") -> Any:
    form = client.get("/staff/login")
    return client.post("/staff/login", data={"email": email, "password": password, "next": next_path,
                                             "csrf_token": csrf_of(form.text)}, follow_redirects=False)
