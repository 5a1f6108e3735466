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
