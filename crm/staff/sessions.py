"""Server-side console sessions: the cookie holds a random token, the database its hash.

Signing out or deactivating deletes the row, so a copied cookie stops working at once; a
session unused for `CRM_STAFF_SESSION_HOURS` is expired on its next use.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
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
    # One statement for the session and its member: it runs before every console page.
    found = session.execute(select(StaffSession, Staff).join(Staff, Staff.id == StaffSession.staff_id)
                            .where(StaffSession.token_hash == hash_token(token))).first()
    if found is None:
        return None
    row, staff = found
    if not staff.active or now - row.last_seen_at > dt.timedelta(hours=idle_hours):
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
    # Sessions held elsewhere (Redis) carry the epoch they started under; this ends them too.
    session.execute(update(Staff).where(Staff.id == staff_id).values(session_epoch=Staff.session_epoch + 1))


# --- where sessions live: the database, or Redis when CRM_REDIS_URL is set ---------------------


class DatabaseSessions:
    """The default: the staff_session table (works across processes sharing the database)."""

    def start(self, session: Session, staff: Staff, now: dt.datetime | None = None, idle_hours: float = 8.0) -> str:
        return start(session, staff, now)

    def resume(self, session: Session, token: str | None, idle_hours: float,
               now: dt.datetime | None = None) -> SignedIn | None:
        return resume(session, token, idle_hours, now)

    def end(self, session: Session, token: str | None) -> None:
        end(session, token)

    def end_all(self, session: Session, staff_id: int) -> None:
        end_all(session, staff_id)


class RedisSessions:
    """Sessions as Redis hashes that expire by themselves after the idle period.

    `{ns}:staff-session:<sha256 of the cookie>` holds the member's id and CSRF token; the key's TTL
    is the idle period, pushed back at most once a minute. `{ns}:staff-sessions:<staff id>` lists a
    member's session keys so "sign out everywhere" and deactivation can drop them all. The member
    row is still read from the database on every request, so a deactivated member is refused even
    before their keys are dropped.
    """

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.ns = namespace

    def _key(self, token: str) -> str:
        return f"{self.ns}:staff-session:{hash_token(token)}"

    def _index(self, staff_id: int) -> str:
        return f"{self.ns}:staff-sessions:{staff_id}"

    def start(self, session: Session, staff: Staff, now: dt.datetime | None = None, idle_hours: float = 8.0) -> str:
        assert staff.id is not None
        token = secrets.token_urlsafe(32)
        ttl = max(60, int(idle_hours * 3600))
        seen = (now or utcnow()).timestamp()
        pipe = self.client.pipeline()
        pipe.hset(self._key(token), mapping={"staff_id": staff.id, "csrf": secrets.token_urlsafe(32), "seen": seen,
                                             "epoch": staff.session_epoch})
        pipe.expire(self._key(token), ttl)
        pipe.sadd(self._index(staff.id), self._key(token))
        pipe.expire(self._index(staff.id), ttl * 4)
        pipe.execute()
        return token

    def resume(self, session: Session, token: str | None, idle_hours: float,
               now: dt.datetime | None = None) -> SignedIn | None:
        if not token:
            return None
        key = self._key(token)
        row = self.client.hgetall(key)
        if not row:
            return None
        now_ts = (now or utcnow()).timestamp()
        staff = session.get(Staff, int(row["staff_id"]))
        if staff is None or not staff.active or int(row.get("epoch", -1)) != staff.session_epoch \
                or now_ts - float(row["seen"]) > idle_hours * 3600:
            self.client.delete(key)
            return None
        if now_ts - float(row["seen"]) > TOUCH_EVERY.total_seconds():
            pipe = self.client.pipeline()
            pipe.hset(key, "seen", now_ts)
            pipe.expire(key, max(60, int(idle_hours * 3600)))
            pipe.expire(self._index(int(row["staff_id"])), max(60, int(idle_hours * 3600)) * 4)
            pipe.execute()
        return SignedIn(staff=staff, session_id=0, csrf_token=row["csrf"])

    def end(self, session: Session, token: str | None) -> None:
        if token:
            key = self._key(token)
            staff_id = self.client.hget(key, "staff_id")
            self.client.delete(key)
            if staff_id:
                self.client.srem(self._index(int(staff_id)), key)

    def end_all(self, session: Session, staff_id: int) -> None:
        keys = list(self.client.smembers(self._index(staff_id)))
        self.client.delete(*keys, self._index(staff_id))
        end_all(session, staff_id)  # and any left in the table from before Redis was configured


_redis_stores: dict[tuple[str, str], RedisSessions] = {}


def store_for(redis_url: str | None, namespace: str) -> DatabaseSessions | RedisSessions:
    """Redis when CRM_REDIS_URL is configured, the database otherwise (one client per URL)."""
    if not redis_url:
        return DatabaseSessions()
    key = (redis_url, namespace)
    if key not in _redis_stores:
        _redis_stores[key] = RedisSessions(redis_url, namespace)
    return _redis_stores[key]
