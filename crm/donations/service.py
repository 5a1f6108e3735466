"""Donation inquiries: the donor-services queue."""

from __future__ import annotations

from sqlmodel import Session

from crm.contacts.models import Contact
from crm.db import utcnow
from crm.donations.models import DonationInquiry, InquiryStatus, InquiryType

INQUIRY_TYPES = [t.value for t in InquiryType]


def open_inquiry(
    session: Session,
    contact: Contact,
    *,
    submission_id: int | None,
    inquiry_type: str,
    amount_range: str,
    message: str,
    in_honor_of: str,
) -> DonationInquiry:
    inquiry = DonationInquiry(
        contact_id=contact.id, submission_id=submission_id, inquiry_type=inquiry_type,
        amount_range=amount_range, message=message, in_honor_of=in_honor_of,
        status=InquiryStatus.new, created_at=utcnow(), updated_at=utcnow(),
    )
    session.add(inquiry)
    if inquiry_type == InquiryType.tribute_memorial and not contact.bereaved:
        # Segments use this to keep patient-journey content away from bereaved families.
        contact.bereaved = True
        session.add(contact)
    session.flush()
    return inquiry
