"""Donor services: the queue (overdue first), one inquiry, assign, answer with a preview, close."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from crm.console import donor_queue, ops_format
from crm.console.web import (
    ConsoleSection,
    Form,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.db import session_scope
from crm.donations import service as donations
from crm.errors import Conflict, Invalid
from crm.http import settings_of
from crm.mail import render

BASE = "/staff/donations"


def _detail(request: Request[Any, Any, Any], inquiry_id: int, status_code: int = 200, **extra: Any) -> Response[str]:
    settings = settings_of(request)
    with session_scope(settings) as session:
        inq, contact = donations.get(session, inquiry_id)
        context = {"inq": inq, "contact": contact, "overdue": donations.is_overdue(settings, inq),
                   "staff": donor_queue.assignable(session), "earlier": donor_queue.earlier(session, inq),
                   "can_answer": donor_queue.can_answer(inq)}
    for name in ("draft", "done", "error"):
        extra.setdefault(name, "")
    return page(request, "donations/inquiry.html", status_code=status_code, title=f"Donation inquiry {inquiry_id}",
                fmt=ops_format, labels=ops_format, **context, **extra)


def _preview(request: Request[Any, Any, Any], inquiry_id: int, answer: str) -> Any:
    settings = settings_of(request)
    with session_scope(settings) as session:
        inq, contact = donations.get(session, inquiry_id)
        if contact is None or contact.email is None:
            raise Conflict("this person's address was erased; an answer cannot be emailed",
                           fields={"answer": "address erased"})
        return render(settings, "donation-answer", donations.answer_context(settings, inq, contact, answer), contact.language)


def _change(request: Request[Any, Any, Any], inquiry_id: int, patch: donations.InquiryPatch, done: str) -> Response[Any]:
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            donations.apply_patch(session, settings, inquiry_id, patch, staff_email(request))
    except (Invalid, Conflict) as exc:
        return _detail(request, inquiry_id, status_code=409 if isinstance(exc, Conflict) else 400,
                       error=exc.message, draft=patch.answer or "")
    return Redirect(f"{BASE}/{inquiry_id}?done={done}", status_code=303)


class DonationsPages(ConsoleSection):
    @get("/donations", guards=[console_viewer], sync_to_thread=True)
    def queue(self, request: Request[Any, Any, Any], status: str | None = None, type: str | None = None,  # noqa: A002
              overdue: str | None = None, page_no: int = 0) -> Response[str]:
        status = status if status in donations.STATUSES else None
        inquiry_type = type if type in donations.INQUIRY_TYPES else None
        with session_scope(settings_of(request)) as session:
            found = donor_queue.load(session, settings_of(request), status, inquiry_type, bool(overdue),
                                     max(0, min(page_no, 10000)))
        return page(request, "donations/queue.html", title="Donations", queue=found, status=status or "",
                    type=inquiry_type or "", overdue=bool(overdue), page_no=page_no, fmt=ops_format,
                    statuses=donations.STATUSES, types=donations.INQUIRY_TYPES)

    @get("/donations/{inquiry_id:int}", guards=[console_viewer], sync_to_thread=True)
    def inquiry(self, request: Request[Any, Any, Any], inquiry_id: int, done: str | None = None) -> Response[str]:
        return _detail(request, inquiry_id, done=done or "")

    @post("/donations/{inquiry_id:int}/assign", guards=[console_editor], sync_to_thread=True)
    def assign(self, request: Request[Any, Any, Any], inquiry_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        try:
            patch = donations.InquiryPatch.parse({"assigned_to": data.get("assigned_to") or None})
        except Invalid as exc:
            return _detail(request, inquiry_id, status_code=400, error=exc.message)
        return _change(request, inquiry_id, patch, "assigned")

    @post("/donations/{inquiry_id:int}/answer", guards=[console_editor], sync_to_thread=True)
    def answer(self, request: Request[Any, Any, Any], inquiry_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        text = (data.get("answer") or "").strip()
        if not text:
            return _detail(request, inquiry_id, status_code=400, error="Write the answer first.")
        if data.get("action") == "preview":
            try:
                preview = _preview(request, inquiry_id, text)
            except Conflict as exc:
                return _detail(request, inquiry_id, status_code=409, error=exc.message, draft=text)
            return _detail(request, inquiry_id, draft=text, preview=preview)
        try:
            patch = donations.InquiryPatch.parse({"status": "answered", "answer": text})
        except Invalid as exc:
            return _detail(request, inquiry_id, status_code=400, error=exc.message, draft=text)
        return _change(request, inquiry_id, patch, "answered")

    @post("/donations/{inquiry_id:int}/close", guards=[console_editor], sync_to_thread=True)
    def close(self, request: Request[Any, Any, Any], inquiry_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        return _change(request, inquiry_id, donations.InquiryPatch(status="closed"), "closed")
