"""Forms posted after the session had expired: kept server-side until the person signs in again.

The key goes into the sign-in page's `next` link (`?restore=<key>`); the page the person returns to
puts the fields back (crm.console.refill) and the stash is deleted. A stash is used once, lives a
day at most, and never holds a password or a CSRF token.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, select
from sqlmodel import Session

from crm.db import utcnow
from crm.staff.models import FormStash
from crm.staff.service import hash_token

KEEP = dt.timedelta(days=1)
MAX_FIELDS = 200
MAX_VALUE = 100_000
DROPPED = ("csrf_token", "password", "password_again", "code")


def put(session: Session, path: str, fields: dict[str, list[str]]) -> str:
    kept = {k: [v[:MAX_VALUE] for v in vs] for k, vs in list(fields.items())[:MAX_FIELDS] if k not in DROPPED}
    key = secrets.token_urlsafe(24)
    now = utcnow()
    session.execute(delete(FormStash).where(FormStash.created_at < now - KEEP))
    session.add(FormStash(key_hash=hash_token(key), path=path[:500], fields=kept, created_at=now))
    return key


def take(session: Session, key: str | None) -> FormStash | None:
    """The stash for `key`, removed as it is read; None when unknown, used or too old."""
    if not key:
        return None
    row = session.scalars(select(FormStash).where(FormStash.key_hash == hash_token(key))).first()
    if row is None:
        return None
    session.delete(row)
    return row if utcnow() - row.created_at < KEEP else None
