"""Donation inquiries of one person: exported in full; their words removed on erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.db import iso, utcnow
from crm.donations.models import DonationInquiry


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    return {"donation_inquiries": [
        {"inquiry_type": i.inquiry_type, "amount_range": i.amount_range, "message": i.message,
         "in_honor_of": i.in_honor_of, "status": i.status, "answer": i.answer,
         "created_at": iso(i.created_at), "answered_at": iso(i.answered_at)}
        for i in session.scalars(select(DonationInquiry).where(DonationInquiry.contact_id == contact_id)
                                 .order_by(DonationInquiry.id))]}


def forget(session: Session, contact_id: int) -> None:
    session.execute(update(DonationInquiry).where(DonationInquiry.contact_id == contact_id)
                    .values(message="", in_honor_of="", amount_range="", answer=None, updated_at=utcnow()))
