"""Staff API: contacts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from crm.contacts import service
from crm.contacts.models import ContactStatus, Role
from crm.errors import Invalid
from crm.http import db, decode_cursor, encode_cursor, page, requires_viewer


def check_choice(name: str, value: str | None, allowed: list[str]) -> None:
    if value is not None and value not in allowed:
        raise Invalid.field(name, f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


class ContactController(Controller):
    path = "/api/v1/contacts"
    tags = ["contacts"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_contacts(
        self,
        request: Request[Any, Any, Any],
        q: str | None = None,
        interest: str | None = None,
        status: str | None = None,
        role: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        check_choice("status", status, [s.value for s in ContactStatus])
        check_choice("role", role, [r.value for r in Role])
        after = decode_cursor(cursor)
        if after is not None and not isinstance(after, int):
            raise Invalid.field("cursor", "is not a cursor this API gave out")
        with db(request) as session:
            rows, more = service.search(session, service.ContactFilters(q, interest, status, role, tag), after, limit)
            items = [service.contact_dict(session, c) for c in rows]
        return page(items, encode_cursor(rows[-1].id) if more and rows else None)
