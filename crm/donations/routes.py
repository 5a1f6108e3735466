"""Staff API: the donor-services queue."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch
from litestar.params import Parameter

from crm.bodies import shaped
from crm.donations import service
from crm.donations.schemas import InquiryChange, InquiryPage, InquiryPublic
from crm.http import (
    check_choice,
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    page,
    requires_editor,
    requires_viewer,
    settings_of,
)


class DonationInquiryController(Controller):
    path = "/api/v1/donation-inquiries"
    tags = ["donations"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_inquiries(
        self,
        request: Request[Any, Any, Any],
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - the contract's parameter name
        older_than_hours: int | None = Parameter(default=None, ge=0, le=100000),
        overdue: bool | None = None,
        assigned_to: str | None = None,
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> InquiryPage:
        check_choice("status", status, service.STATUSES)
        check_choice("type", type, service.INQUIRY_TYPES)
        after = decode_id_cursor(cursor)
        settings = settings_of(request)
        filters = service.InquiryFilters(status, type, older_than_hours, overdue, assigned_to)
        with db(request) as session:
            rows, more = service.search(session, settings, filters, after, limit)
            items = [service.inquiry_dict(settings, i, c) for i, c in rows]
        return shaped(InquiryPage, page(items, encode_cursor(rows[-1][0].id) if more and rows else None))

    @get("/{inquiry_id:int}", sync_to_thread=True)
    def get_inquiry(self, request: Request[Any, Any, Any], inquiry_id: int) -> InquiryPublic:
        with db(request) as session:
            return shaped(InquiryPublic, service.inquiry_dict(settings_of(request), *service.get(session, inquiry_id)))

    @patch("/{inquiry_id:int}", guards=[requires_editor], sync_to_thread=True)
    def patch_inquiry(self, request: Request[Any, Any, Any], inquiry_id: int, data: InquiryChange) -> InquiryPublic:
        changes = service.InquiryPatch.from_body(data)
        settings = settings_of(request)
        with db(request) as session:
            service.apply_patch(session, settings, inquiry_id, changes, current_staff(request).email)
            return shaped(InquiryPublic, service.inquiry_dict(settings, *service.get(session, inquiry_id)))
