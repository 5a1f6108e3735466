"""Server-side console sessions: the cookie holds a random token, the database its hash.

Signing out or deactivating deletes the row, so a copied cookie stops working at once; a
session unused for `CRM_STAFF_SESSION_HOURS` is expired on its next use.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlmodel import Session

from crm.db import utcnow
from crm.staff.models import Staff, StaffSession
from crm.staff.service import hash_token

# Writing last_seen_at on every request would make each page view a write; once a minute is enough.
TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    session_id: int
    csrf_token: str


def start(session: Session, staff: Staff, now: dt.datetime | None = None) -> str:
    """A new session for the member; returns the cookie token (never stored)."""
    assert staff.id is not None
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(staff_id=staff.id, token_hash=hash_token(token), csrf_token=secrets.token_urlsafe(32),
                             created_at=now, last_seen_at=now))
    session.flush()
    return token


def resume(session: Session, token: str | None, idle_hours: float, now: dt.datetime | None = None) -> SignedIn | None:
    if not token:
        return None
    now = now or utcnow()
    row = session.scalars(select(StaffSession).where(StaffSession.token_hash == hash_token(token))).first()
    if row is None:
        return None
    staff = session.get(Staff, row.staff_id)
    if staff is None or not staff.active or now - row.last_seen_at > dt.timedelta(hours=idle_hours):
        session.delete(row)
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    assert row.id is not None
    return SignedIn(staff=staff, session_id=row.id, csrf_token=row.csrf_token)


def end(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_hash == hash_token(token)))


def end_all(session: Session, staff_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
