"""What needs attention today, and signups per day for the last 30 days: one small query each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignKind, CampaignState
from crm.config import Settings
from crm.contacts import importer
from crm.contacts.models import Contact, ContactStatus
from crm.db import utcnow
from crm.donations import service as donations
from crm.donations.models import DonationInquiry, InquiryStatus
from crm.jobs.models import Job
from crm.volunteers.models import Volunteer, VolunteerStatus

DAYS = 30
SHOWN = 5  # campaigns and imports listed by name; the rest are one click away


@dataclass(frozen=True)
class Counts:
    new_volunteers: int
    open_inquiries: int
    overdue_inquiries: int
    campaigns_sending: int
    campaigns_scheduled: int
    signups_30_days: int


@dataclass(frozen=True)
class Day:
    date: dt.date
    count: int


@dataclass(frozen=True)
class Dashboard:
    counts: Counts
    campaigns: list[Campaign]  # sending or scheduled, soonest first
    imports: list[Job]  # newest first
    days: list[Day]  # oldest first, every one of the last DAYS days (zero included)

    @property
    def peak(self) -> int:
        return max((d.count for d in self.days), default=0)


def _count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def counts(session: Session, settings: Settings, now: dt.datetime | None = None) -> Counts:
    now = now or utcnow()
    since = now - dt.timedelta(days=DAYS)
    return Counts(
        new_volunteers=_count(session, Volunteer, Volunteer.status == VolunteerStatus.interested),
        open_inquiries=_count(session, DonationInquiry,
                              DonationInquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned])),  # type: ignore[attr-defined]
        overdue_inquiries=_count(session, DonationInquiry, donations.overdue_condition(settings, now)),
        campaigns_sending=_count(session, Campaign, Campaign.kind == CampaignKind.campaign,
                                 Campaign.state == CampaignState.sending),
        campaigns_scheduled=_count(session, Campaign, Campaign.kind == CampaignKind.campaign,
                                   Campaign.state == CampaignState.scheduled),
        signups_30_days=_count(session, Contact, Contact.created_at >= since, Contact.status != ContactStatus.erased),
    )


def signups_per_day(session: Session, now: dt.datetime | None = None) -> list[Day]:
    """Contacts created per UTC day (erased ones too: they did sign up), every day present."""
    today = (now or utcnow()).date()
    first = today - dt.timedelta(days=DAYS - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    # PostgreSQL's date() of a timestamptz follows the session's zone; the chart's days are UTC days.
    utc = func.timezone("UTC", Contact.created_at) if session.get_bind().dialect.name == "postgresql" else Contact.created_at
    day = func.date(utc)
    found = {str(d): n for d, n in session.execute(
        select(day, func.count()).where(Contact.created_at >= start).group_by(day))}
    return [Day(d, found.get(d.isoformat(), 0)) for d in (first + dt.timedelta(days=i) for i in range(DAYS))]


def load(session: Session, settings: Settings, now: dt.datetime | None = None) -> Dashboard:
    campaigns = list(session.scalars(
        select(Campaign).where(Campaign.kind == CampaignKind.campaign,
                               Campaign.state.in_([CampaignState.sending, CampaignState.scheduled]))  # type: ignore[attr-defined]
        .order_by(Campaign.id.desc()).limit(SHOWN)))  # type: ignore[union-attr]
    imports = list(session.scalars(select(Job).where(Job.kind == importer.KIND).order_by(Job.id.desc()).limit(SHOWN)))  # type: ignore[union-attr]
    return Dashboard(counts(session, settings, now), campaigns, imports, signups_per_day(session, now))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: Day
    tick: bool  # a date label under this bar


CHART_W, CHART_H, LEFT, TOP, BOTTOM = 720, 200, 40, 12, 170


def bars(days: list[Day]) -> list[Bar]:
    """Geometry of the server-rendered SVG chart: one bar per day, scaled to the busiest day."""
    peak = max((d.count for d in days), default=0) or 1
    slot = (CHART_W - LEFT - 10) / max(len(days), 1)
    out = []
    for i, d in enumerate(days):
        height = (BOTTOM - TOP) * d.count / peak
        out.append(Bar(x=round(LEFT + i * slot + 2, 1), y=round(BOTTOM - height, 1), width=round(slot - 4, 1),
                       height=round(height, 1), day=d, tick=(len(days) - 1 - i) % 7 == 0))
    return out
