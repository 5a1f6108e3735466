"""The staff API's donation-inquiry request body (SPEC section 5)."""

from __future__ import annotations

import msgspec

from crm.donations.models import InquiryStatus


class InquiryChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/donation-inquiries/{id}; null is the same as absent (nothing changes).

    The service checks the meaning: the queue moves only forward (a move back is a 409),
    `assigned_to` is an active staff member, `answered` with an `answer` emails it.
    """

    status: InquiryStatus | None = None
    assigned_to: str | None = None  # a staff email
    answer: str | None = None


class InquiryPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    contact_id: int | None
    email: str | None
    first_name: str
    last_name: str
    language: str | None
    inquiry_type: str
    type: str  # the same as inquiry_type, under the filter's name
    amount_range: str | None
    message: str
    in_honor_of: str | None
    status: str
    assigned_to: str | None
    answer: str | None
    answered_by: str | None
    answered_at: str | None
    closed_at: str | None
    age_hours: float
    overdue: bool
    created_at: str
    updated_at: str


class InquiryPage(msgspec.Struct):
    items: list[InquiryPublic]
    next_cursor: str | None
