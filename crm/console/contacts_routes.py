"""The contacts pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from crm.console import profile
from crm.console.web import PAGE_SIZE, ConsoleSection, console_viewer, page
from crm.contacts import service as contacts
from crm.contacts.models import ContactStatus
from crm.contacts.schemas import contacts_public
from crm.db import session_scope
from crm.errors import Invalid
from crm.http import decode_id_cursor, encode_cursor, settings_of


class ContactsPages(ConsoleSection):
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
        return page(request, "contacts.html", title="Contacts", items=items, q=q or "", status=status or "",
                    statuses=statuses, next_cursor=next_cursor)

    @get("/contacts/{contact_id:int}", guards=[console_viewer], sync_to_thread=True)
    def contact_profile(self, request: Request[Any, Any, Any], contact_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            found = profile.load(session, contact_id)
        name = " ".join(p for p in (found.contact.first_name, found.contact.last_name) if p)
        return page(request, "contact.html", title=f"Contact {name or found.contact.email or contact_id}",
                    profile=found, name=name)
