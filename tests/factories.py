"""Factory functions: make_contact(session, **overrides) and friends. Each flushes, none commits."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from crm.contacts import service as contacts
from crm.contacts.models import Contact

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_contact(
    session: Session,
    *,
    email: str | None = None,
    interests: list[str] | None = None,
    tags: list[str] | None = None,
    lists: dict[str, str] | None = None,
    frequency: str | None = None,
    **fields: Any,
) -> Contact:
    """A contact; `lists` maps list key -> state, e.g. {"newsletter": "confirmed"}."""
    address = contacts.normalize_email(email or f"person{_next()}@example.org")
    contact, _ = contacts.upsert_contact(session, address)
    for key, value in fields.items():
        setattr(contact, key, value)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    if interests:
        contacts.add_interests(session, contact.id, interests)
    if tags:
        contacts.add_tags(session, contact.id, tags)
    for list_key, state in (lists or {}).items():
        sub = contacts.ensure_subscription(session, contact.id, list_key)
        contacts.set_subscription_state(session, sub, state)
        if frequency and list_key == "newsletter":
            sub.frequency = frequency
        session.add(sub)
    session.flush()
    return contact


def make_volunteer(
    session: Session,
    *,
    status: str = "active",
    areas: list[str] | None = None,
    availability: list[str] | None = None,
    postal_code: str = "30301",
    paused_until: Any = None,
    lists: dict[str, str] | None = None,
    **contact_fields: Any,
) -> Any:
    """A volunteer (and its contact, confirmed on volunteer-updates unless `lists` says otherwise)."""
    from crm.volunteers import service as volunteers

    contact = make_contact(session, lists=lists if lists is not None else {"volunteer-updates": "confirmed"},
                           postal_code=postal_code, **contact_fields)
    assert contact.id is not None
    vol, _ = volunteers.upsert_from_form(
        session, contact.id, postal_code=postal_code, areas=areas or ["transport-to-treatment"],
        availability=availability or ["weekends"], skills="", languages=[], message="")
    vol.status = status
    vol.paused_until = paused_until
    session.add(vol)
    session.flush()
    return vol
