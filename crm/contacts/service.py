"""Contacts: the ground floor every other domain stands on.

Identity is the normalized address (email-validator), compared case-insensitively
through `email_key`. The one mailing gate, `mailable`, lives here. Staff search is
crm.contacts.search; consent events are crm.contacts.consent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, delete, or_, select, update
from sqlmodel import Session

from crm.addresses import NormalizedEmail, normalize_email  # noqa: F401 - re-exported for the domains
from crm.contacts.gate import is_mailable, mailable, mailable_audience  # noqa: F401 - re-exported
from crm.contacts.models import (
    AppSecret,
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Frequency,
    Interest,
    ListKey,
    Subscription,
    SubscriptionState,
    Suppression,
)
from crm.db import dialect_insert, insert_ignore, utcnow
from crm.errors import Invalid
from crm.events import service as events

SUPPRESSION_SALT = "suppression_salt"


def clean_text(value: Any, field: str, *, max_length: int = 200, single_line: bool = True) -> str:
    """Trimmed free text; single-line fields refuse CR/LF since they may reach a header."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid.field(field, "must be text")
    if "\x00" in value:
        raise Invalid.field(field, "must not contain NUL characters")
    if single_line and ("\r" in value or "\n" in value):
        raise Invalid.field(field, "must not contain line breaks")
    value = value.strip()
    if len(value) > max_length:
        raise Invalid.field(field, f"must be at most {max_length} characters")
    return value


# --- suppression ------------------------------------------------------------------------------

_salt_cache: dict[str, str] = {}


def _salt(session: Session) -> str:
    url = str(session.get_bind().url)
    if url not in _salt_cache:
        row = session.get(AppSecret, SUPPRESSION_SALT)
        if row is None:
            raise RuntimeError("suppression salt missing: run `crm db upgrade`")
        _salt_cache[url] = row.value
    return _salt_cache[url]


def email_hash(session: Session, email_key: str) -> str:
    return hashlib.sha256(f"{_salt(session)}:{email_key}".encode()).hexdigest()


def suppression_reason(session: Session, email_key: str) -> str | None:
    row = session.get(Suppression, email_hash(session, email_key))
    return row.reason if row else None


def suppress(session: Session, email_key: str | None = None, reason: str = "unsubscribed", *,
             hashed: str | None = None) -> None:
    """Add to the suppression list; an existing reason is replaced only by a stronger one."""
    h = hashed or email_hash(session, email_key or "")
    existing = session.get(Suppression, h)
    if existing is None:
        insert_ignore(session, Suppression, {"email_hash": h, "reason": reason, "created_at": utcnow()})
    elif _REASON_STRENGTH.get(reason, 0) > _REASON_STRENGTH.get(existing.reason, 0):
        existing.reason = reason
        session.add(existing)


# Erased is final: the suppression list must say so (SPEC 14: an erased address is never removable),
# whatever the address did before. A hand-added entry gives way to anything the mail system learns.
_REASON_STRENGTH = {"manual": 0, "unsubscribed": 1, "bounced": 3, "complained": 4, "erased": 9}


def lift_suppression(session: Session, email_key: str, reasons: Iterable[str]) -> None:
    session.execute(
        delete(Suppression).where(
            Suppression.email_hash == email_hash(session, email_key), Suppression.reason.in_(list(reasons))
        )
    )


# --- interests and tags -----------------------------------------------------------------------


# The taxonomy changes only through migrations, yet every newsletter post validates against it:
# keep it per database for a short while (a miss in validate_interests reloads before refusing).
INTEREST_KEYS_TTL = 30.0
_interest_cache: dict[str, tuple[float, frozenset[str]]] = {}


def _interest_keys(session: Session, *, fresh: bool = False) -> frozenset[str]:
    url = str(session.get_bind().url)
    hit = _interest_cache.get(url)
    now = time.monotonic()
    if fresh or hit is None or now - hit[0] > INTEREST_KEYS_TTL:
        hit = (now, frozenset(session.scalars(select(Interest.key))))
        _interest_cache[url] = hit
    return hit[1]


def interest_keys(session: Session) -> set[str]:
    return set(_interest_keys(session))


def list_interests(session: Session) -> list[Interest]:
    return list(session.scalars(select(Interest).order_by(Interest.position, Interest.key)))


def validate_interests(session: Session, keys: Any, field: str = "interests") -> list[str]:
    if keys is None or keys == []:
        return []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise Invalid.field(field, "must be a list of interest keys")
    known = _interest_keys(session)
    unknown = [k for k in keys if k not in known]
    if unknown:
        unknown = [k for k in keys if k not in _interest_keys(session, fresh=True)]
    if unknown:
        raise Invalid.field(field, f"unknown interest {', '.join(repr(k) for k in unknown)}")
    return list(dict.fromkeys(keys))


def add_interests(session: Session, contact_id: int, keys: Iterable[str]) -> None:
    insert_ignore(session, ContactInterest, [{"contact_id": contact_id, "interest_key": k} for k in keys])


def set_interests(session: Session, contact_id: int, keys: Iterable[str]) -> None:
    keys = list(keys)
    session.execute(
        delete(ContactInterest).where(ContactInterest.contact_id == contact_id,
                                      ContactInterest.interest_key.not_in(keys))
    )
    add_interests(session, contact_id, keys)


def interests_of(session: Session, contact_id: int) -> list[str]:
    return sorted(session.scalars(select(ContactInterest.interest_key).where(ContactInterest.contact_id == contact_id)))


def interest_labels(session: Session, contact_id: int, language: str | None) -> list[str]:
    """The contact's interests as they read them (Spanish label where there is one), in taxonomy order."""
    rows = session.execute(
        select(Interest.label, Interest.label_es).join(ContactInterest, ContactInterest.interest_key == Interest.key)
        .where(ContactInterest.contact_id == contact_id).order_by(Interest.position, Interest.key)).all()
    return [(es or en) if language == "es" else en for en, es in rows]


def tags_of(session: Session, contact_id: int) -> list[str]:
    return sorted(session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == contact_id)))


def add_tags(session: Session, contact_id: int, tags: Iterable[str]) -> None:
    insert_ignore(session, ContactTag, [{"contact_id": contact_id, "tag": t} for t in tags])


def set_tags(session: Session, contact_id: int, tags: Iterable[str]) -> None:
    tags = list(tags)
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id, ContactTag.tag.not_in(tags)))
    add_tags(session, contact_id, tags)


# --- contacts ---------------------------------------------------------------------------------


def find_by_email(session: Session, email: NormalizedEmail) -> Contact | None:
    return session.scalars(select(Contact).where(Contact.email_key == email.key)).first()


def upsert_contact(session: Session, email: NormalizedEmail, **fields: Any) -> tuple[Contact, bool]:
    """Find or create the contact for this address; non-empty fields fill empty columns only.

    One round trip (see _contact_set); the returned Contact is the session's, refreshed.
    """
    now = utcnow()
    stmt = dialect_insert(session)(Contact).values(_contact_values(email, fields, now, email_hash(session, email.key)))
    stmt = stmt.on_conflict_do_update(index_elements=["email_key"], set_=_contact_set(stmt.excluded, _given(fields)))
    contact = session.scalars(stmt.returning(Contact), execution_options={"populate_existing": True}).one()
    return contact, contact.created_at == now


def upsert_contact_row(session: Session, email: NormalizedEmail, **fields: Any) -> tuple[Row[Any], bool, str | None]:
    """upsert_contact without the ORM, for hot paths that need only the columns: the contact row,
    whether it was created, and the address's suppression reason, all in one round trip.

    It bypasses the identity map, so use it only where the session holds no Contact for this address.
    """
    now = utcnow()
    hashed = email_hash(session, email.key)
    row = _contact_values(email, fields, now, hashed)
    stmt = _contact_row_upsert(session.get_bind().dialect.name, tuple(row), _given(fields))
    found = session.execute(stmt, {**row, "suppression_hash": hashed}).one()
    return found, found.created_at == now, found.suppression_reason


def _given(fields: dict[str, Any]) -> tuple[str, ...]:
    return tuple(key for key, value in fields.items() if value not in (None, ""))


def _contact_values(email: NormalizedEmail, fields: dict[str, Any], now: Any, hashed: str) -> dict[str, Any]:
    return {"email": email.email, "email_key": email.key, "email_hash": hashed,
            "status": ContactStatus.active, "language": "en", "created_at": now, "updated_at": now,
            "first_name": "", "last_name": "", "phone": "", "postal_code": "", "bereaved": False,
            "soft_bounces": 0, **{key: fields[key] for key in _given(fields)}}


def _contact_set(excluded: Any, given: tuple[str, ...]) -> dict[str, Any]:
    """The ON CONFLICT branch, so one round trip serves new and known people alike: a new person's
    fields go in with the INSERT; for a known person a given field fills only a column that is still
    empty (anyone can type anyone's address, so a post never overwrites what the person or staff
    set; changes go through the person's own preference link). updated_at moves only if a column
    really fills. Only our own INSERT carries that exact created_at. Concurrent posts for one address
    race on the unique email_key; the loser updates the winner's row."""
    col = Contact.__table__.c  # type: ignore[attr-defined]
    empty = {key: or_(col[key].is_(None), col[key] == "") for key in given}
    set_: dict[str, Any] = {key: case((empty[key], excluded[key]), else_=col[key]) for key in given}
    if not set_:
        return {"email_key": excluded.email_key}
    fills = or_(*(and_(empty[key], col[key].is_distinct_from(excluded[key])) for key in given))
    set_["updated_at"] = case((fills, excluded.updated_at), else_=col.updated_at)
    return set_


@lru_cache(maxsize=64)
def _contact_row_upsert(dialect: str, columns: tuple[str, ...], given: tuple[str, ...]) -> Any:
    """Built once per shape and executed with parameters: building and cache-keying a statement
    that carries literal values costs more CPU than the round trip."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    table = Contact.__table__  # type: ignore[attr-defined]
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns})
    stmt = stmt.on_conflict_do_update(index_elements=["email_key"], set_=_contact_set(stmt.excluded, given))
    reason = select(Suppression.reason).where(Suppression.email_hash == bindparam("suppression_hash"))
    return stmt.returning(*table.c, reason.scalar_subquery().label("suppression_reason"))


def subscription(session: Session, contact_id: int, list_key: str) -> Subscription | None:
    return session.scalars(
        select(Subscription).where(Subscription.contact_id == contact_id, Subscription.list == list_key)
    ).first()


def subscriptions_of(session: Session, contact_id: int) -> dict[str, Subscription]:
    rows = session.scalars(select(Subscription).where(Subscription.contact_id == contact_id))
    return {s.list: s for s in rows}


def ensure_subscription(session: Session, contact_id: int, list_key: str) -> Subscription:
    return _insert_or_get(
        session,
        Subscription,
        {"contact_id": contact_id, "list": list_key, "state": SubscriptionState.pending,
         "frequency": Frequency.weekly if list_key == ListKey.newsletter else None, "created_at": utcnow()},
        ["contact_id", "list"],
    )


def _insert_or_get(session: Session, model: Any, row: dict[str, Any], conflict: list[str]) -> Any:
    """INSERT, or on conflict the existing row, as a fresh ORM object in one statement.

    The DO UPDATE sets a key column to itself, a no-op that lets RETURNING hand back the row that
    won a race (DO NOTHING would return nothing). populate_existing refreshes a copy the session holds.
    """
    stmt = dialect_insert(session)(model).values(row)
    stmt = stmt.on_conflict_do_update(index_elements=conflict, set_={conflict[0]: stmt.excluded[conflict[0]]})
    return session.scalars(stmt.returning(model), execution_options={"populate_existing": True}).one()


def set_subscription_state(session: Session, sub: Subscription, state: str, source: str | None = None) -> bool:
    """Move a subscription; returns whether anything changed.

    `source` ("staff", "import") goes into the event, so journeys can leave out what staff did for a person.
    """
    if sub.state == state:
        return False
    now = utcnow()
    sub.state = state
    if state == SubscriptionState.confirmed:
        sub.confirmed_at = now
    elif state == SubscriptionState.unsubscribed:
        sub.unsubscribed_at = now
        sub.welcomed_at = None
    session.add(sub)
    if state in (SubscriptionState.confirmed, SubscriptionState.unsubscribed):
        extra = {"source": source} if source else {}
        events.record(session, f"subscription.{state}", sub.contact_id, list=sub.list, state=state, **extra)
    return True


def contact_dict(session: Session, contact: Contact) -> dict[str, Any]:
    """The contact shape of SPEC section 5."""
    assert contact.id is not None
    return {
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "postal_code": contact.postal_code,
        "status": contact.status,
        "role": contact.role,
        "language": contact.language,
        "bereaved": contact.bereaved,
        "interests": interests_of(session, contact.id),
        "tags": tags_of(session, contact.id),
        "subscriptions": {k: s.state for k, s in sorted(subscriptions_of(session, contact.id).items())},
        "frequency": (subscription(session, contact.id, ListKey.newsletter).frequency  # type: ignore[union-attr]
                      if subscription(session, contact.id, ListKey.newsletter) else None),
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }


def mark_status(session: Session, contact_id: int, status: str) -> None:
    session.execute(update(Contact).where(Contact.id == contact_id).values(status=status, updated_at=utcnow()))
