"""Write events in the caller's transaction (never a commit here), and forget a person in them.

An event exists if and only if its change committed: `record` only adds a row to the session the
change is using. Payloads are thin by rule (SPEC 12): ids, the contact's email and what changed;
`record` refuses any key outside ALLOWED_KEYS so interests, roles, messages or amounts cannot
slip in through a caller.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlmodel import Session

from crm.contacts.models import Contact
from crm.db import UTCDateTime, utcnow
from crm.events.models import Event, EventUnpublished

TYPES: tuple[str, ...] = (
    "contact.created", "contact.updated", "contact.erased",
    "subscription.confirmed", "subscription.unsubscribed",
    "form.submitted",
    "volunteer.status_changed", "volunteer.signup_changed",
    "donation_inquiry.created", "donation_inquiry.answered",
    "campaign.started", "campaign.sent",
)
TEST_TYPE = "webhook.test"  # sent to one endpoint on request; never fanned out

# Everything a payload may carry. Deliberately no interests, role, message, amount, answer, note,
# in_honor_of, phone or name: the people here are patients and bereaved families.
ALLOWED_KEYS = frozenset({
    "contact_id", "email", "changed", "list", "state", "form", "submission_id",
    "volunteer_id", "from_status", "to_status", "signup_id", "shift_id", "status",
    "inquiry_id", "inquiry_status", "campaign_id", "recipients", "sent", "source", "webhook_endpoint_id",
    "erased",
})
# Field names that `changed` may list (the names only, never the values).
# Interests and role are left out even as names: "interests changed" is itself a hint.
CHANGEABLE = frozenset({"email", "first_name", "last_name", "phone", "postal_code", "language", "tags",
                        "subscriptions", "status", "frequency", "list", "areas", "availability", "paused_until"})

_EVENT = Event.__table__  # type: ignore[attr-defined]
_INSERT = insert(_EVENT).returning(_EVENT.c.id)
_UNPUBLISHED = insert(EventUnpublished.__table__)  # type: ignore[attr-defined]


def record(session: Session, type: str, contact_id: int | None = None, **data: Any) -> int:
    """Append one event to the caller's unit of work (no flush, no commit)."""
    if type not in TYPES and type != TEST_TYPE:
        raise ValueError(f"unknown event type {type!r}")
    bad = set(data) - ALLOWED_KEYS
    if bad:
        raise ValueError(f"event {type} may not carry {sorted(bad)} (thin payloads, SPEC 12)")
    if "changed" in data:
        data["changed"] = sorted(set(data["changed"]) & CHANGEABLE)
    if contact_id is not None:
        data.setdefault("contact_id", contact_id)
        if "email" not in data:
            data["email"] = session.scalar(select(Contact.email).where(Contact.id == contact_id))
    # Core insert: pending ORM changes go first, so the event follows its change in id order.
    session.flush()
    event_id = session.scalar(_INSERT, {"type": type, "contact_id": contact_id, "data": _jsonable(data),
                                        "occurred_at": utcnow()})
    session.execute(_UNPUBLISHED, {"event_id": event_id})
    return event_id


def record_many(session: Session, type: str, contact_ids: list[int], **data: Any) -> None:
    """One event per contact, set-based (imports): INSERT ... SELECT from the contact table."""
    if not contact_ids:
        return
    if set(data) - ALLOWED_KEYS:
        raise ValueError(f"event {type} may not carry {sorted(set(data) - ALLOWED_KEYS)}")
    session.flush()
    payload = func.json_object if session.get_bind().dialect.name == "sqlite" else func.json_build_object
    args: list[Any] = [literal("contact_id"), Contact.id, literal("email"), Contact.email]
    for key, value in data.items():
        args += [literal(key), literal(value)]
    ids = session.scalars(insert(_EVENT).from_select(
        ["type", "contact_id", "data", "occurred_at"],
        select(literal(type), Contact.id, payload(*args), literal(utcnow(), UTCDateTime))
        .where(Contact.id.in_(contact_ids)).order_by(Contact.id)).returning(_EVENT.c.id)).all()
    session.execute(_UNPUBLISHED, [{"event_id": i} for i in ids])


def signup_changed(session: Session, contact_id: int | None, *, signup_id: int, shift_id: int, status: str,
                   volunteer_id: int | None = None) -> None:
    """For the shifts code: a sign-up was made, cancelled, completed, waitlisted or offered."""
    record(session, "volunteer.signup_changed", contact_id, signup_id=signup_id, shift_id=shift_id,
           status=status, volunteer_id=volunteer_id)


def unpublished(session: Session, limit: int) -> Any:
    """The oldest events not yet fanned out (a select for the fan-out to use)."""
    return select(EventUnpublished.event_id).order_by(EventUnpublished.event_id).limit(limit)


def mark_published(session: Session, event_ids: list[int]) -> None:
    if event_ids:
        session.execute(delete(EventUnpublished).where(EventUnpublished.event_id.in_(event_ids)))


def forget_contact(session: Session, contact_id: int) -> int:
    """Erasure: no stored payload keeps the person's email; ids and what happened stay.

    One person's events are few, so they are rewritten row by row (JSON editing in SQL differs
    between SQLite and PostgreSQL)."""
    rows = session.execute(select(Event.id, Event.data).where(Event.contact_id == contact_id)).all()
    for event_id, data in rows:
        session.execute(update(Event).where(Event.id == event_id)
                        .values(data={**data, "email": None, "erased": True}))
    return len(rows)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if v is not None and not isinstance(v, int | float | str | bool | list) else v)
            for k, v in data.items()}
