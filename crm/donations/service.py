"""Donation inquiries: the donor-services queue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlmodel import Session

from crm.bodies import present
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import keyset_page, utcnow
from crm.donations.models import DonationInquiry, InquiryStatus, InquiryType
from crm.donations.schemas import InquiryChange
from crm.errors import Conflict, Invalid, NotFound
from crm.events import service as events
from crm.links import person_links
from crm.outbox import service as outbox
from crm.staff.models import Staff

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
    events.record(session, "donation_inquiry.created", contact.id, inquiry_id=inquiry.id, inquiry_status=inquiry.status)
    return inquiry


# --- the queue --------------------------------------------------------------------------------

ORDER = {InquiryStatus.new: 0, InquiryStatus.assigned: 1, InquiryStatus.answered: 2, InquiryStatus.closed: 3}
STATUSES = [s.value for s in InquiryStatus]
WAITING = (InquiryStatus.new, InquiryStatus.assigned)  # what can be overdue: nobody has answered yet
NO_MAIL_REASONS = ("bounced", "complained")


@dataclass(frozen=True)
class InquiryPatch:
    status: str | None = None
    assigned_to: str | None = None
    answer: str | None = None

    @classmethod
    def parse(cls, data: Any) -> InquiryPatch:
        if not isinstance(data, dict):
            raise Invalid.field("body", "must be a JSON object")
        known = ("status", "assigned_to", "answer")
        extra = sorted(set(data) - set(known))
        if extra:
            raise Invalid.field(extra[0], f"unknown field; expected any of {', '.join(known)}")
        status = data.get("status")
        if isinstance(status, InquiryStatus):
            status = status.value
        if status is not None and status not in STATUSES:
            raise Invalid.field("status", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        assigned_to = data.get("assigned_to")
        if assigned_to is not None:
            assigned_to = contacts.normalize_email(assigned_to, "assigned_to").key
        answer = contacts.clean_text(data.get("answer"), "answer", max_length=20000, single_line=False) or None
        return cls(status=status, assigned_to=assigned_to, answer=answer)

    @classmethod
    def from_body(cls, body: InquiryChange) -> InquiryPatch:
        """The typed body (schema-checked members and types), checked for meaning as `parse` does."""
        return cls.parse(present(body))


def get(session: Session, inquiry_id: int) -> tuple[DonationInquiry, Contact | None]:
    row = session.execute(select(DonationInquiry, Contact).outerjoin(Contact, Contact.id == DonationInquiry.contact_id)
                          .where(DonationInquiry.id == inquiry_id)).tuples().first()
    if row is None:
        raise NotFound(f"no donation inquiry {inquiry_id}")
    return row


def _known_staff(session: Session, email: str) -> None:
    if session.scalar(select(Staff.id).where(Staff.email == email, Staff.active.is_(True))) is None:
        raise Invalid.field("assigned_to", f"{email} is not a staff member")


def apply_patch(session: Session, settings: Settings, inquiry_id: int, patch: InquiryPatch, actor: str
                ) -> list[int]:
    """Assign, answer or close. The queue only moves forward; returns outbox ids to wake up."""
    inq, contact = get(session, inquiry_id)
    current = InquiryStatus(inq.status)
    target = InquiryStatus(patch.status) if patch.status else None
    if target is None:
        # The request says what happened; the state follows: an answer answers, an assignee assigns.
        target = (InquiryStatus.answered if patch.answer else
                  InquiryStatus.assigned if patch.assigned_to and current == InquiryStatus.new else current)
    if ORDER[target] < ORDER[current]:
        raise Conflict(f"inquiry {inquiry_id} is {current}; it cannot move back to {target}",
                       fields={"status": f"illegal move from {current} to {target}"})
    if current == InquiryStatus.closed and (patch.assigned_to or patch.answer):
        raise Conflict(f"inquiry {inquiry_id} is closed", fields={"status": "closed"})
    now = utcnow()
    ids: list[int] = []
    if patch.assigned_to is not None and patch.assigned_to != inq.assigned_to:
        _known_staff(session, patch.assigned_to)
        inq.assigned_to = patch.assigned_to
    if target != InquiryStatus.new and inq.assigned_to is None:
        inq.assigned_to = actor  # moved on with nobody named: whoever moved it is on record
    if patch.answer is not None and patch.answer != inq.answer:
        if inq.answer is not None:
            raise Conflict(f"inquiry {inquiry_id} was already answered; its answer was emailed and stays as sent",
                           fields={"answer": "already answered"})
        if target != InquiryStatus.answered:
            raise Invalid.field("answer", f"an answer moves the inquiry to answered, not {target}")
        ids.append(_queue_answer(session, settings, inq, contact, patch.answer))
        inq.answer, inq.answered_at, inq.answered_by = patch.answer, now, actor
        events.record(session, "donation_inquiry.answered", inq.contact_id, inquiry_id=inq.id, inquiry_status="answered")
    if target == InquiryStatus.answered and inq.answer is None:
        raise Invalid.field("answer", "is required to mark an inquiry answered (it is emailed to the person)")
    if target == InquiryStatus.closed and inq.closed_at is None:
        inq.closed_at = now
    if target != current or session.is_modified(inq):
        inq.status = target
        inq.updated_at = now
        session.add(inq)
        session.flush()
    return ids


def _queue_answer(session: Session, settings: Settings, inq: DonationInquiry, contact: Contact | None,
                  answer: str) -> int:
    if contact is None or contact.email is None or contact.email_key is None:
        raise Conflict("this person's address was erased; an answer cannot be emailed",
                       fields={"answer": "address erased"})
    if contacts.suppression_reason(session, contact.email_key) in NO_MAIL_REASONS:
        raise Conflict("this address bounced or complained; answer by phone instead",
                       fields={"answer": "address suppressed"})
    ctx = answer_context(settings, inq, contact, answer)
    mid = outbox.queue(session, "donation-answer", contact.email, ctx, contact_id=contact.id,
                       language=contact.language, dedupe_key=f"donation-answer:{inq.id}")
    assert mid is not None
    return mid


def answer_context(settings: Settings, inq: DonationInquiry, contact: Contact, answer: str) -> dict[str, Any]:
    """What the `donation-answer` email is rendered with: the console previews exactly this."""
    assert contact.id is not None
    return {"contact": {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email,
                        "language": contact.language, "role": contact.role, "id": contact.id},
            "inquiry": {"id": inq.id, "type": inq.inquiry_type, "in_honor_of": inq.in_honor_of},
            "answer": answer, "links": person_links(settings, contact.id)}


# --- the list and what is overdue -------------------------------------------------------------


def overdue_cutoff(settings: Settings, now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()) - dt.timedelta(hours=settings.donation_overdue_hours)


def is_overdue(settings: Settings, inq: DonationInquiry, now: dt.datetime | None = None) -> bool:
    return inq.status in WAITING and inq.created_at < overdue_cutoff(settings, now)


def overdue_condition(settings: Settings, now: dt.datetime | None = None) -> ColumnElement[bool]:
    return and_(DonationInquiry.status.in_(list(WAITING)), DonationInquiry.created_at < overdue_cutoff(settings, now))


@dataclass(frozen=True)
class InquiryFilters:
    status: str | None = None
    type: str | None = None
    older_than_hours: int | None = None
    overdue: bool | None = None
    assigned_to: str | None = None


def search(session: Session, settings: Settings, f: InquiryFilters, after_id: int | None, limit: int
           ) -> tuple[list[tuple[DonationInquiry, Contact | None]], bool]:
    stmt = select(DonationInquiry, Contact).outerjoin(Contact, Contact.id == DonationInquiry.contact_id)
    if f.status:
        stmt = stmt.where(DonationInquiry.status == f.status)
    if f.type:
        stmt = stmt.where(DonationInquiry.inquiry_type == f.type)
    if f.older_than_hours is not None:
        stmt = stmt.where(DonationInquiry.created_at < utcnow() - dt.timedelta(hours=f.older_than_hours))
    if f.overdue is not None:
        stmt = stmt.where(overdue_condition(settings) if f.overdue else ~overdue_condition(settings))
    if f.assigned_to:
        stmt = stmt.where(DonationInquiry.assigned_to == f.assigned_to.strip().lower())
    return keyset_page(session, stmt, DonationInquiry.id, after_id, limit, tuples=True)


def inquiry_dict(settings: Settings, inq: DonationInquiry, contact: Contact | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": inq.id, "contact_id": inq.contact_id,
        "email": contact.email if contact else None,
        "first_name": contact.first_name if contact else "", "last_name": contact.last_name if contact else "",
        "language": contact.language if contact else None,
        "inquiry_type": inq.inquiry_type, "type": inq.inquiry_type, "amount_range": inq.amount_range,
        "message": inq.message, "in_honor_of": inq.in_honor_of, "status": inq.status,
        "assigned_to": inq.assigned_to, "answer": inq.answer, "answered_by": inq.answered_by,
        "answered_at": inq.answered_at.isoformat() if inq.answered_at else None,
        "closed_at": inq.closed_at.isoformat() if inq.closed_at else None,
        "age_hours": round((now - inq.created_at).total_seconds() / 3600, 1),
        "overdue": is_overdue(settings, inq, now),
        "created_at": inq.created_at.isoformat(), "updated_at": inq.updated_at.isoformat(),
    }


def console_links(settings: Settings, inquiry_id: int | None = None) -> dict[str, str]:
    """Where staff emails about inquiries point: the console's pages (sign-in first if needed)."""
    base = f"{settings.public_base_url}/staff/donations"
    links = {"queue": f"{base}?status=new", "overdue": f"{base}?overdue=1"}
    if inquiry_id is not None:
        links["inquiry"] = f"{base}/{inquiry_id}"
    return links


def queue_overdue_summary(session: Session, settings: Settings, *, limit: int = 200) -> int | None:
    """Tell donor services what is waiting too long: one email a day at most (dedupe key per date).

    No amounts: an inbox is not the place for what someone gives in memory of their mother.
    """
    now = utcnow()
    total = session.scalar(select(func.count()).select_from(DonationInquiry).where(overdue_condition(settings, now)))
    if not total:
        return None
    rows = session.scalars(select(DonationInquiry).where(overdue_condition(settings, now))
                           .order_by(DonationInquiry.created_at, DonationInquiry.id).limit(limit))
    items = [{"id": i.id, "type": i.inquiry_type, "status": i.status, "assigned_to": i.assigned_to or "",
              "age_hours": int((now - i.created_at).total_seconds() // 3600),
              "url": console_links(settings, i.id)["inquiry"]} for i in rows]
    ctx = {"date": now.date().isoformat(), "total": total, "items": items, "more": max(0, total - len(items)),
           "hours": settings.donation_overdue_hours, "console": console_links(settings)}
    return outbox.queue(session, "donation-overdue-summary", settings.notify_donations, ctx,
                        dedupe_key=f"donation-overdue-summary:{now.date().isoformat()}")
