"""The contacts pages: search, profile, edit, erase, exports.

Roles as in the API: viewers search, read and export (every export and every profile view is in the
audit log), editors edit and erase.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Stream
from sqlalchemy import select

from crm.console import contact_forms, profile
from crm.console.web import (
    PAGE_SIZE,
    ConsoleSection,
    MultiForm,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.contacts import staff_service
from crm.contacts.schemas import contact_public, contacts_public
from crm.contacts.search import ContactFilters, search
from crm.db import session_scope
from crm.errors import Conflict, Invalid
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.segments import export
from crm.segments.models import Segment
from crm.staff.service import audit


def _after(cursor: str | None) -> int | None:
    try:
        return decode_id_cursor(cursor)
    except Invalid:  # a mangled paging link just starts from the top
        return None


class ContactsPages(ConsoleSection):
    @get("/contacts", guards=[console_viewer], sync_to_thread=True)
    def contact_list(self, request: Request[Any, Any, Any], q: str | None = None, interest: str | None = None,
                     status: str | None = None, role: str | None = None, tag: str | None = None,
                     list: str | None = None, after: str | None = None,  # noqa: A002 - the filter's name
                     erased: str | None = None) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            choices = profile.interest_choices(session)
            f = contact_forms.list_filters(q, interest, status, role, tag, list, {k for k, _ in choices})
            rows, more = search(session, ContactFilters(
                f.q or None, f.interest or None, f.status or None, f.role or None, f.tag or None, f.on_list or None),
                _after(after), PAGE_SIZE)
            items = contacts_public(session, rows)
        next_cursor = encode_cursor(rows[-1].id) if more and rows else None
        return page(request, "contacts.html", title="Contacts", items=items, f=f, interests=choices,
                    statuses=contact_forms.STATUSES, roles=contact_forms.ROLES, lists=contact_forms.LISTS,
                    next_cursor=next_cursor, paged=after is not None, erased=erased == "1")

    @get("/contacts/{contact_id:int}", guards=[console_viewer], sync_to_thread=True)
    def contact_profile(self, request: Request[Any, Any, Any], contact_id: int, saved: str | None = None
                        ) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            found = profile.load(session, contact_id)
            audit(session, staff_email(request), "contact.view", f"contact:{contact_id}", rows=1)
        name = " ".join(p for p in (found.contact.first_name, found.contact.last_name) if p)
        return page(request, "contact.html", title=f"Contact {name or found.contact.email or contact_id}",
                    profile=found, name=name, saved=saved == "1")

    @get("/contacts/{contact_id:int}/edit", guards=[console_editor], sync_to_thread=True)
    def edit_form(self, request: Request[Any, Any, Any], contact_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            current = contact_public(session, staff_service.get_contact(session, contact_id))
            return _edit_page(request, session, current, contact_forms.as_form(current), {})

    @post("/contacts/{contact_id:int}/edit", guards=[console_editor], sync_to_thread=True)
    def edit(self, request: Request[Any, Any, Any], contact_id: int, data: MultiForm) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            current = contact_public(session, staff_service.get_contact(session, contact_id))
            body = contact_forms.patch_body(data, current)
            try:
                if body:
                    staff_service.patch(session, contact_id, body, staff_email(request))
            except (Invalid, Conflict) as exc:
                session.rollback()
                errors = exc.fields or {"form": exc.message}
                return _edit_page(request, session, current, contact_forms.typed(data), errors,
                                  400 if isinstance(exc, Invalid) else 409)
        return Redirect(f"/staff/contacts/{contact_id}?saved=1", status_code=303)

    @get("/contacts/{contact_id:int}/erase", guards=[console_editor], sync_to_thread=True)
    def erase_form(self, request: Request[Any, Any, Any], contact_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            current = contact_public(session, staff_service.get_contact(session, contact_id))
        return page(request, "contact_erase.html", title="Erase contact", c=current, error=None)

    @post("/contacts/{contact_id:int}/erase", guards=[console_editor], sync_to_thread=True)
    def erase(self, request: Request[Any, Any, Any], contact_id: int, data: MultiForm, privacy: Any
              ) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            current = contact_public(session, staff_service.get_contact(session, contact_id))
            if not contact_forms.same_address(str(data.get("confirm_email", "")), current.email):
                return page(request, "contact_erase.html", status_code=400, title="Erase contact", c=current,
                            error="The address you typed is not this contact's address; nothing was erased.")
            privacy.erase(session, contact_id, staff_email(request))
        return Redirect("/staff/contacts?erased=1", status_code=303)

    @get("/contacts/{contact_id:int}/export", guards=[console_viewer], sync_to_thread=True)
    def export_person(self, request: Request[Any, Any, Any], contact_id: int, privacy: Any) -> Response[bytes]:
        """Everything held about the person, as the API's JSON (audited there as contact.export)."""
        with session_scope(settings_of(request)) as session:
            held = privacy.export(session, contact_id, staff_email(request))
        return Response(json.dumps(held, indent=2, ensure_ascii=False).encode(), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="contact-{contact_id}.json"',
                                 "Cache-Control": "no-store"})

    @get("/contacts/export", guards=[console_viewer], sync_to_thread=True)
    def export_page(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            segments = list(session.execute(select(Segment.id, Segment.name).order_by(Segment.name)).tuples())
        return page(request, "contacts_export.html", title="Export contacts", segments=segments)

    @get("/contacts/export.csv", guards=[console_viewer], sync_to_thread=True)
    def export_csv(self, request: Request[Any, Any, Any], segment_id: str | None = None) -> Stream:
        """The API's CSV export (formula-safe, streamed, audited as contacts.export_csv)."""
        if segment_id and not segment_id.isdigit():
            raise Invalid.field("segment_id", "choose a segment from the list")  # never "everyone" by mistake
        chosen = int(segment_id) if segment_id else None
        with session_scope(settings_of(request)) as session:
            audit_id = export.start(session, chosen, staff_email(request))
        name = f"segment-{chosen}" if chosen is not None else "contacts"
        return Stream(export.stream(settings_of(request), chosen, audit_id), media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": f'attachment; filename="{name}.csv"',
                               "Cache-Control": "no-store"})


def _edit_page(request: Request[Any, Any, Any], session: Any, current: Any, form: dict[str, Any],
               errors: dict[str, str], status_code: int = 200) -> Response[str]:
    return page(request, "contact_edit.html", status_code=status_code, title="Edit contact", c=current, form=form,
                errors=errors, interests=profile.interest_choices(session), roles=contact_forms.ROLES,
                lists=contact_forms.LISTS, states=contact_forms.STATES)
