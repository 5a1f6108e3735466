"""Staff console passwords: argon2id hashes, and lockout after repeated failed sign-ins.

Failures are counted per address and per client address over a sliding window; either count
reaching the limit refuses sign-in (even with the right password) until old failures age out,
so guessing one account from many clients or many accounts from one client are both slowed.
"""

from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlmodel import Session

from crm.db import utcnow
from crm.errors import Invalid
from crm.staff.models import Staff, StaffLoginFailure
from crm.staff.service import email_key

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)
MIN_LENGTH = 12
MAX_LENGTH = 1000  # argon2 hashes anything, but a megabyte "password" is an attack on CPU time

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the address is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(session: Session, staff: Staff, password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid.field("password", f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Invalid.field("password", f"must be at most {MAX_LENGTH} characters")
    staff.password_hash = hash_password(password)
    session.add(staff)


def locked(session: Session, email: str, client: str, now: dt.datetime | None = None) -> bool:
    since = (now or utcnow()) - WINDOW
    key = _key(email)
    by_account = session.scalar(select(func.count()).select_from(StaffLoginFailure).where(
        StaffLoginFailure.email == key, StaffLoginFailure.at > since)) or 0
    by_client = session.scalar(select(func.count()).select_from(StaffLoginFailure).where(
        StaffLoginFailure.client == client[:64], StaffLoginFailure.at > since)) or 0
    return by_account >= MAX_FAILURES or by_client >= MAX_FAILURES


def record_failure(session: Session, email: str, client: str, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    session.add(StaffLoginFailure(email=_key(email), client=client[:64], at=now))
    # Old failures count for nothing; dropping them keeps the table the size of current attacks.
    session.execute(delete(StaffLoginFailure).where(StaffLoginFailure.at <= now - WINDOW))


def clear_failures(session: Session, email: str) -> None:
    session.execute(delete(StaffLoginFailure).where(StaffLoginFailure.email == _key(email)))


def check_credentials(session: Session, email: str, password: str, client: str,
                      now: dt.datetime | None = None) -> Staff | None:
    """The active member with this address and password, or None (never saying which part was wrong)."""
    if locked(session, email, client, now):
        return None
    key = _key(email)
    staff = session.scalars(select(Staff).where(Staff.email == key)).first() if key else None
    ok = verify_password(staff.password_hash if staff else None, password[:MAX_LENGTH])
    if staff is None or not ok or not staff.active:
        record_failure(session, email, client, now)
        return None
    clear_failures(session, email)
    return staff


def _key(email: str) -> str:
    try:
        return email_key(email)
    except Invalid:
        return email.strip().lower()[:320]
