"""The donor-services queue as the console shows it: overdue first, then by state, oldest waiting first.

No amounts anywhere in the list (what someone gives in memory of their mother is not for a
shared screen); the one inquiry's page shows the range because answering may need it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.donations import service as donations
from crm.donations.models import DonationInquiry, InquiryStatus
from crm.staff.models import Staff

PAGE = 50


@dataclass(frozen=True)
class Row:
    id: int
    name: str
    inquiry_type: str
    status: str
    assigned_to: str
    created_at: dt.datetime
    overdue: bool
    age_hours: float


@dataclass(frozen=True)
class Queue:
    rows: list[Row]
    counts: dict[str, int]  # per state, and "overdue"
    more: bool


def _name(first: str | None, last: str | None, email: str | None) -> str:
    return " ".join(p for p in (first, last) if p) or email or "Erased contact"


def load(session: Session, settings: Settings, status: str | None, inquiry_type: str | None, overdue: bool,
         page: int) -> Queue:
    now = utcnow()
    late = donations.overdue_condition(settings, now)
    state_rank = case({s: n for s, n in donations.ORDER.items()}, value=DonationInquiry.status, else_=9)
    stmt = (select(DonationInquiry.id, Contact.first_name, Contact.last_name, Contact.email,
                   DonationInquiry.inquiry_type, DonationInquiry.status, DonationInquiry.assigned_to,
                   DonationInquiry.created_at, case((late, 1), else_=0).label("late"))
            .outerjoin(Contact, Contact.id == DonationInquiry.contact_id))
    if status:
        stmt = stmt.where(DonationInquiry.status == status)
    if inquiry_type:
        stmt = stmt.where(DonationInquiry.inquiry_type == inquiry_type)
    if overdue:
        stmt = stmt.where(late)
    # Waiting ones oldest first (who has waited longest is answered first); done ones newest first.
    waiting = DonationInquiry.status.in_(list(donations.WAITING))  # type: ignore[attr-defined]
    stmt = stmt.order_by(case((late, 0), else_=1), state_rank,
                         case((waiting, DonationInquiry.created_at), else_=None).asc(),
                         DonationInquiry.created_at.desc(), DonationInquiry.id.desc())
    found = session.execute(stmt.offset(page * PAGE).limit(PAGE + 1)).all()
    rows = [Row(id=r[0], name=_name(r[1], r[2], r[3]), inquiry_type=r[4], status=r[5], assigned_to=r[6] or "",
                created_at=r[7], overdue=bool(r[8]), age_hours=(now - r[7]).total_seconds() / 3600)
            for r in found[:PAGE]]
    counts = dict(session.execute(select(DonationInquiry.status, func.count()).group_by(DonationInquiry.status)).all())
    counts["overdue"] = session.scalar(select(func.count()).select_from(DonationInquiry).where(late)) or 0
    return Queue(rows, counts, len(found) > PAGE)


def assignable(session: Session) -> list[str]:
    """Active staff who can take an inquiry (editors and admins: viewers only read)."""
    return list(session.scalars(select(Staff.email).where(Staff.active.is_(True), Staff.role != "viewer")
                                .order_by(Staff.email)))


def earlier(session: Session, inq: DonationInquiry) -> list[DonationInquiry]:
    """The same person's other inquiries: what donor services already told them."""
    if inq.contact_id is None:
        return []
    return list(session.scalars(select(DonationInquiry).where(DonationInquiry.contact_id == inq.contact_id,
                                                              DonationInquiry.id != inq.id)
                                .order_by(DonationInquiry.id.desc()).limit(20)))


def can_answer(inq: DonationInquiry) -> bool:
    return inq.answer is None and inq.status != InquiryStatus.closed
