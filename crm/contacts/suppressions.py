"""The suppression list as staff read and change it (SPEC 14): search, add by hand, audited removal.

A row is keyed by the salted hash of the address (crm.contacts.service.email_hash); the address is
shown from the row itself (hand-added entries) or from the contact the hash belongs to, and is gone
once the person is erased. An erased entry can never be removed: that would let an address the person
asked us to forget be mailed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import Session

from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus, Suppression
from crm.db import utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.staff.service import audit

REASONS = ("manual", "unsubscribed", "bounced", "complained", "erased")
ADDABLE = ("manual", "unsubscribed", "bounced", "complained")  # erasure is done by erasing the contact
REASON_LABELS = {"manual": "Added by staff", "unsubscribed": "Unsubscribed", "bounced": "Bounced",
                 "complained": "Marked as spam", "erased": "Erased at the person's request"}
# A removal lets the address be mailed again; for these the contact's own status said the same.
_STATUS_OF_REASON = {"bounced": ContactStatus.bounced, "complained": ContactStatus.complained}


@dataclass(frozen=True)
class Entry:
    email: str  # "" once erased (only the hash is kept)
    reason: str
    note: str
    added_by: str
    created_at: dt.datetime
    email_hash: str

    @property
    def erased(self) -> bool:
        return self.reason == "erased"

    @property
    def reason_label(self) -> str:
        return REASON_LABELS.get(self.reason, self.reason)


Cursor = tuple[dt.datetime, str]


def _entry(row: Suppression, contact_email: str | None) -> Entry:
    email = "" if row.reason == "erased" else (row.email or contact_email or "")
    return Entry(email=email, reason=row.reason, note=row.note or "", added_by=row.added_by or "",
                 created_at=row.created_at, email_hash=row.email_hash)


def _base():  # type: ignore[no-untyped-def]
    return select(Suppression, Contact.email).outerjoin(Contact, Contact.email_hash == Suppression.email_hash)


def search(session: Session, q: str | None, reason: str | None, after: Cursor | None, limit: int
           ) -> tuple[list[Entry], bool]:
    """Newest first. A whole address is looked up by its hash; a fragment matches readable addresses."""
    if reason is not None and reason not in REASONS:
        raise Invalid.field("reason", f"unknown reason {reason!r}; expected one of {', '.join(REASONS)}")
    stmt = _base()
    if reason:
        stmt = stmt.where(Suppression.reason == reason)
    q = "".join(ch for ch in (q or "") if ch.isprintable()).strip().lower()[:320]
    if q:
        try:
            key = contacts.normalize_email(q).key
        except Invalid:
            key = None
        if key:
            stmt = stmt.where(Suppression.email_hash == contacts.email_hash(session, key))
        else:
            like = f"%{q.replace('%', '').replace('_', '')}%"
            stmt = stmt.where(or_(func.lower(Suppression.email).like(like), Contact.email_key.like(like)))
    if after is not None:
        at, h = after
        stmt = stmt.where(or_(Suppression.created_at < at, and_(Suppression.created_at == at,
                                                                 Suppression.email_hash < h)))
    rows = session.execute(stmt.order_by(Suppression.created_at.desc(), Suppression.email_hash.desc())
                           .limit(limit + 1)).tuples().all()
    return [_entry(s, e) for s, e in rows[:limit]], len(rows) > limit


def get(session: Session, email: str, field: str = "email") -> Entry:
    key = contacts.normalize_email(email, field).key
    row = session.execute(_base().where(Suppression.email_hash == contacts.email_hash(session, key))).tuples().first()
    if row is None:
        raise NotFound(f"{key} is not on the suppression list")
    return _entry(*row)


def parse_reason(reason: str | None) -> tuple[str, str]:
    """(reason code, note): a code as given, anything else is staff's own words on a manual entry."""
    text = contacts.clean_text(reason, "reason", max_length=500)
    if not text or text.lower() == "manual":
        return "manual", ""
    if text.lower() == "erased":
        raise Invalid.field("reason", "an address is erased by erasing its contact, not on the suppression list")
    if text.lower() in ADDABLE:
        return text.lower(), ""
    return "manual", text


def add(session: Session, email: str, reason: str | None, actor: str) -> tuple[Entry, bool]:
    """Suppress an address; (entry, created). Adding one already listed keeps it (a stronger reason wins)."""
    normalized = contacts.normalize_email(email)
    code, note = parse_reason(reason)
    h = contacts.email_hash(session, normalized.key)
    existing = session.get(Suppression, h)
    created = existing is None
    if created:
        session.add(Suppression(email_hash=h, reason=code, created_at=utcnow(), email=normalized.email,
                                note=note or None, added_by=actor))
    else:
        if existing.reason == "erased":
            raise Conflict("this address was erased at the person's request and stays suppressed",
                           fields={"email": "erased"})
        contacts.suppress(session, hashed=h, reason=code)
        existing.email = existing.email or normalized.email
        existing.note = note or existing.note
        session.add(existing)
    session.flush()
    audit(session, actor, "suppression.add", target=normalized.key, detail={"reason": code, "note": note})
    return get(session, normalized.key), created


def remove(session: Session, email: str, why: str | None, actor: str) -> None:
    """Take an address off the list (audited with staff's reason); an erased one is a Conflict."""
    entry = get(session, email)
    if entry.erased:
        raise Conflict("this address was erased at the person's request; it can never be removed",
                       fields={"email": "erased"})
    note = contacts.clean_text(why, "reason", max_length=500)
    session.execute(delete(Suppression).where(Suppression.email_hash == entry.email_hash))
    status = _STATUS_OF_REASON.get(entry.reason)
    if status is not None:
        # The contact was marked bounced or complained with the same evidence; both are lifted together.
        session.execute(update(Contact).where(Contact.email_hash == entry.email_hash, Contact.status == status)
                        .values(status=ContactStatus.active, soft_bounces=0, updated_at=utcnow()))
    audit(session, actor, "suppression.remove", target=contacts.normalize_email(email).key,
          detail={"reason": entry.reason, "why": note})
