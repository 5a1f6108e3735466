"""The suppression list for admins: search, reason and date, add by hand, remove with a reason (audited)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.response import Redirect

from crm.console import ops_format
from crm.console.web import (
    PAGE_SIZE,
    ConsoleSection,
    Form,
    check_csrf,
    console_admin,
    page,
    staff_email,
)
from crm.contacts import suppressions
from crm.contacts.suppression_schemas import decode_suppression_cursor, encode_suppression_cursor
from crm.db import session_scope
from crm.errors import Conflict, Invalid, NotFound
from crm.http import settings_of

BASE = "/staff/suppressions"


def _list(request: Request[Any, Any, Any], q: str = "", reason: str = "", after: str | None = None,
          status_code: int = 200, **extra: Any) -> Response[str]:
    reason = reason if reason in suppressions.REASONS else ""
    try:
        cursor = decode_suppression_cursor(after)
    except Invalid:
        cursor = None
    with session_scope(settings_of(request)) as session:
        rows, more = suppressions.search(session, q[:320], reason or None, cursor, PAGE_SIZE)
    extra.setdefault("added", "")
    extra.setdefault("removed", "")
    return page(request, "suppressions/list.html", status_code=status_code, title="Suppressions", rows=rows, q=q,
                reason=reason, reasons=suppressions.REASON_LABELS, addable=suppressions.ADDABLE, fmt=ops_format,
                next_cursor=encode_suppression_cursor(rows, more), **extra)


class SuppressionsPages(ConsoleSection):
    @get("/suppressions", guards=[console_admin], sync_to_thread=True)
    def suppression_list(self, request: Request[Any, Any, Any], q: str = "", reason: str = "",
                         after: str | None = None, added: str = "", removed: str = "") -> Response[str]:
        return _list(request, q.strip(), reason, after, added=added, removed=removed)

    @post("/suppressions", guards=[console_admin], sync_to_thread=True)
    def add(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        check_csrf(request, data)
        note = (data.get("note") or "").strip()
        code = data.get("reason") or "manual"
        try:
            with session_scope(settings_of(request)) as session:
                entry, _ = suppressions.add(session, data.get("email", ""), note if code == "manual" and note else code,
                                            staff_email(request))
        except (Invalid, Conflict) as exc:
            return _list(request, status_code=400 if isinstance(exc, Invalid) else 409, error=exc.message,
                         form=data)
        return Redirect(f"{BASE}?added={quote(entry.email)}", status_code=303)

    @get("/suppressions/remove", guards=[console_admin], sync_to_thread=True)
    def confirm_remove(self, request: Request[Any, Any, Any], email: str = "") -> Response[str]:
        try:
            with session_scope(settings_of(request)) as session:
                entry = suppressions.get(session, email)
        except Invalid:
            raise NotFound("that is not an address on the suppression list") from None
        return page(request, "suppressions/remove.html", title="Remove from the suppression list", entry=entry,
                    fmt=ops_format, error="")

    @post("/suppressions/remove", guards=[console_admin], sync_to_thread=True)
    def remove(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        check_csrf(request, data)
        email, why = data.get("email", ""), (data.get("reason") or "").strip()
        try:
            if not why:
                raise Invalid.field("reason", "say why the address may be mailed again")
            with session_scope(settings_of(request)) as session:
                suppressions.remove(session, email, why, staff_email(request))
        except (Invalid, Conflict) as exc:
            with session_scope(settings_of(request)) as session:
                entry = suppressions.get(session, email)
            return page(request, "suppressions/remove.html", status_code=400 if isinstance(exc, Invalid) else 409,
                        title="Remove from the suppression list", entry=entry, fmt=ops_format, error=exc.message)
        return Redirect(f"{BASE}?removed={quote(email)}", status_code=303)
