"""What needs attention today: the dashboard's counts, one small query each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignKind, CampaignState
from crm.contacts.models import Contact, ContactStatus
from crm.db import utcnow
from crm.donations.models import DonationInquiry, InquiryStatus
from crm.volunteers.models import Volunteer, VolunteerStatus


@dataclass(frozen=True)
class Counts:
    new_volunteers: int
    open_inquiries: int
    campaigns_sending: int
    campaigns_scheduled: int
    signups_30_days: int


def _count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def counts(session: Session, now: dt.datetime | None = None) -> Counts:
    since = (now or utcnow()) - dt.timedelta(days=30)
    return Counts(
        new_volunteers=_count(session, Volunteer, Volunteer.status == VolunteerStatus.interested),
        open_inquiries=_count(session, DonationInquiry,
                              DonationInquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned])),  # type: ignore[attr-defined]
        campaigns_sending=_count(session, Campaign, Campaign.kind == CampaignKind.campaign,
                                 Campaign.state == CampaignState.sending),
        campaigns_scheduled=_count(session, Campaign, Campaign.kind == CampaignKind.campaign,
                                   Campaign.state == CampaignState.scheduled),
        signups_30_days=_count(session, Contact, Contact.created_at >= since, Contact.status != ContactStatus.erased),
    )
