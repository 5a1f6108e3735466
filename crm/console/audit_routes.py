"""The audit log for admins: who saw, exported, erased or changed whose data, filtered."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import select

from crm.console import ops_format
from crm.console.web import PAGE_SIZE, ConsoleSection, console_admin, page
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.errors import Invalid
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.staff import audit
from crm.staff.models import AuditEvent

CONTACT_TARGET = re.compile(r"contact:(\d{1,10})")


def _date(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time.min, tzinfo=dt.UTC)
    except ValueError:
        raise Invalid.field(name, "must be a date like 2026-12-31") from None


def _whose(session: Any, events: list[AuditEvent]) -> dict[str, tuple[int, str]]:
    """target -> (contact id, name) for the page's contact targets, in one query."""
    ids = {int(m[1]) for e in events if e.target and (m := CONTACT_TARGET.fullmatch(e.target))}
    if not ids:
        return {}
    rows = session.execute(select(Contact.id, Contact.first_name, Contact.last_name, Contact.email)
                           .where(Contact.id.in_(ids))).all()  # type: ignore[union-attr]
    return {f"contact:{i}": (i, " ".join(p for p in (f, last) if p) or e or f"Erased contact {i}")
            for i, f, last, e in rows}


def _contact_target(session: Any, email: str) -> str:
    """`contact:<id>` of the person with this address: the audit log names people by id."""
    from crm.contacts import service as contacts

    found = contacts.find_by_email(session, contacts.normalize_email(email, "Person"))
    if found is None:
        raise Invalid.field("Person", f"no contact has the address {email}")
    return f"contact:{found.id}"


def _matching(session: Any, query: dict[str, str], after: str | None) -> tuple[list[AuditEvent], bool, str]:
    """(a page of events, more?, "") for the filters, or ([], False, why) when one is refused.

    A person's address is looked up and written into query["target"], so the form shows what was searched.
    """
    try:
        start, end = _date(query["since"], "From"), _date(query["until"], "To")
        after_id = decode_id_cursor(after)
        if query["person"]:
            query["target"] = _contact_target(session, query["person"])
    except Invalid as exc:
        return [], False, exc.message
    rows, more = audit.search(
        session, query["action"] or None, query["staff"] or None, after_id, PAGE_SIZE, since=start,
        until=end + dt.timedelta(days=1) if end else None, target=query["target"] or None)  # To is inclusive
    return rows, more, ""


class AuditPages(ConsoleSection):
    @get("/audit", guards=[console_admin], sync_to_thread=True)
    def audit_log(self, request: Request[Any, Any, Any], action: str = "", staff: str = "", since: str = "",
                  until: str = "", target: str = "", person: str = "", after: str | None = None) -> Response[str]:
        query = {"action": action, "staff": staff, "since": since, "until": until, "target": target.strip(),
                 "person": person.strip()}
        with session_scope(settings_of(request)) as session:
            rows, more, error = _matching(session, query, after)
            whose, choices, members = _whose(session, rows), audit.actions(session), audit.members(session)
        return page(request, "audit/list.html", status_code=400 if error else 200, title="Audit", rows=rows,
                    whose=whose, actions=choices, members=members, q=query, error=error, fmt=ops_format,
                    next_cursor=encode_cursor(rows[-1].id) if more and rows else None)
