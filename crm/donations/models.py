"""Donation inquiries: the donor-services queue. No payment is ever taken here."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class InquiryType(StrEnum):
    one_time = "one-time"
    monthly = "monthly"
    tribute_memorial = "tribute-memorial"
    planned_giving = "planned-giving"
    corporate_matching = "corporate-matching"
    stock_or_daf = "stock-or-daf"
    other = "other"


class InquiryStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    answered = "answered"
    closed = "closed"


class DonationInquiry(SQLModel, table=True):
    __tablename__ = "donation_inquiry"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True, ondelete="SET NULL")
    submission_id: int | None = Field(default=None, foreign_key="form_submission.id", unique=True)
    inquiry_type: str = Field(max_length=30, index=True)
    amount_range: str = Field(default="", max_length=100)
    message: str = Field(default="", max_length=5000)
    in_honor_of: str = Field(default="", max_length=200)
    status: str = Field(default=InquiryStatus.new, max_length=20, index=True)
    assigned_to: str | None = Field(default=None, max_length=320)
    answer: str | None = Field(default=None, max_length=20000)
    answered_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
