"""Staff API: the donor-services queue."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import Parameter
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.contacts.routes import check_choice
from crm.donations import service
from crm.donations.models import DonationInquiry, InquiryStatus
from crm.errors import Invalid
from crm.http import db, decode_cursor, encode_cursor, page, requires_viewer


def inquiry_dict(inq: DonationInquiry, contact: Contact | None) -> dict[str, Any]:
    return {
        "id": inq.id, "contact_id": inq.contact_id,
        "email": contact.email if contact else None,
        "first_name": contact.first_name if contact else "", "last_name": contact.last_name if contact else "",
        "inquiry_type": inq.inquiry_type, "amount_range": inq.amount_range, "message": inq.message,
        "in_honor_of": inq.in_honor_of, "status": inq.status, "assigned_to": inq.assigned_to, "answer": inq.answer,
        "created_at": inq.created_at.isoformat(), "updated_at": inq.updated_at.isoformat(),
    }


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
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        check_choice("status", status, [s.value for s in InquiryStatus])
        check_choice("type", type, service.INQUIRY_TYPES)
        after = decode_cursor(cursor)
        if after is not None and not isinstance(after, int):
            raise Invalid.field("cursor", "is not a cursor this API gave out")
        stmt = select(DonationInquiry, Contact).outerjoin(Contact, Contact.id == DonationInquiry.contact_id)
        if status:
            stmt = stmt.where(DonationInquiry.status == status)
        if type:
            stmt = stmt.where(DonationInquiry.inquiry_type == type)
        if after is not None:
            stmt = stmt.where(DonationInquiry.id < after)
        with db(request) as session:
            rows = list(session.execute(stmt.order_by(DonationInquiry.id.desc()).limit(limit + 1)).tuples())
            items = [inquiry_dict(i, c) for i, c in rows[:limit]]
        return page(items, encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None)
