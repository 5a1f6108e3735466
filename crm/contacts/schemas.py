"""The staff API's contact shapes (SPEC section 5), and loading them for a whole page at once.

`contact_dict` asks four more queries per contact; a page here costs three queries in all,
whatever its size (interests, tags and subscriptions of every contact on the page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlmodel import Session

from crm.contacts.models import (
    Contact,
    ContactInterest,
    ContactTag,
    Language,
    ListKey,
    Role,
    Subscription,
    SubscriptionState,
)


class ContactCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/contacts. Staff may confirm a list only for someone who has not said no to it
    (an unsubscribe or a suppression is a 409: only the person can undo their own no)."""

    email: str
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    phone: str | msgspec.UnsetType = msgspec.UNSET
    postal_code: str | msgspec.UnsetType = msgspec.UNSET
    language: Language | msgspec.UnsetType = msgspec.UNSET
    role: Role | None | msgspec.UnsetType = msgspec.UNSET
    interests: list[str] | msgspec.UnsetType = msgspec.UNSET  # keys of GET /api/v1/interests
    tags: list[str] | None | msgspec.UnsetType = msgspec.UNSET
    subscriptions: dict[ListKey, SubscriptionState] | msgspec.UnsetType = msgspec.UNSET
    confirm_role_address: bool | msgspec.UnsetType = msgspec.UNSET  # true: subscribe a role address (info@...) anyway


class ContactPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/contacts/{id}: the fields present are replaced, the others kept."""

    email: str | msgspec.UnsetType = msgspec.UNSET
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    phone: str | msgspec.UnsetType = msgspec.UNSET
    postal_code: str | msgspec.UnsetType = msgspec.UNSET
    language: Language | msgspec.UnsetType = msgspec.UNSET
    role: Role | None | msgspec.UnsetType = msgspec.UNSET
    interests: list[str] | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | None | msgspec.UnsetType = msgspec.UNSET
    subscriptions: dict[ListKey, SubscriptionState] | msgspec.UnsetType = msgspec.UNSET
    confirm_role_address: bool | msgspec.UnsetType = msgspec.UNSET  # true: subscribe a role address (info@...) anyway


class ContactPublic(msgspec.Struct, kw_only=True):
    id: int
    email: str | None
    first_name: str
    last_name: str
    phone: str
    postal_code: str
    status: str
    role: str | None
    language: str
    bereaved: bool
    interests: list[str]
    tags: list[str]
    subscriptions: dict[str, str]  # list key -> pending | confirmed | unsubscribed
    frequency: str | None  # of the newsletter subscription
    created_at: str
    updated_at: str


class ImportStarted(msgspec.Struct, kw_only=True):
    job_id: int  # progress and row errors at GET /api/v1/jobs/{job_id}


class ContactPage(msgspec.Struct):
    items: list[ContactPublic]
    next_cursor: str | None


def contacts_public(session: Session, contacts: Sequence[Contact]) -> list[ContactPublic]:
    ids = [c.id for c in contacts]
    interests: dict[int, list[str]] = defaultdict(list)
    tags: dict[int, list[str]] = defaultdict(list)
    subs: dict[int, dict[str, Subscription]] = defaultdict(dict)
    if ids:
        for cid, key in session.execute(select(ContactInterest.contact_id, ContactInterest.interest_key)
                                        .where(ContactInterest.contact_id.in_(ids))):
            interests[cid].append(key)
        for cid, tag in session.execute(select(ContactTag.contact_id, ContactTag.tag)
                                        .where(ContactTag.contact_id.in_(ids))):
            tags[cid].append(tag)
        for sub in session.scalars(select(Subscription).where(Subscription.contact_id.in_(ids))):
            subs[sub.contact_id][sub.list] = sub
    return [_public(c, sorted(interests[c.id]), sorted(tags[c.id]), subs[c.id])  # type: ignore[index]
            for c in contacts]


def contact_public(session: Session, contact: Contact) -> ContactPublic:
    return contacts_public(session, [contact])[0]


def _public(c: Contact, interests: list[str], tags: list[str], subs: dict[str, Subscription]) -> ContactPublic:
    assert c.id is not None
    newsletter = subs.get(ListKey.newsletter)
    return ContactPublic(
        id=c.id, email=c.email, first_name=c.first_name, last_name=c.last_name, phone=c.phone,
        postal_code=c.postal_code, status=c.status, role=c.role, language=c.language, bereaved=c.bereaved,
        interests=interests, tags=tags, subscriptions={k: s.state for k, s in sorted(subs.items())},
        frequency=newsletter.frequency if newsletter else None,
        created_at=c.created_at.isoformat(), updated_at=c.updated_at.isoformat(),
    )


# GET /api/v1/contacts/{id}/export: everything held about one person (crm.privacy gathers it).
Rows = list[dict[str, Any]]


class DataSubjectExport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact: dict[str, Any]  # the profile as stored
    subscriptions: Rows
    consent_events: Rows  # what was agreed, when, where, and the wording's hash
    deliveries: Rows  # every email sent, with opens and clicks if tracked
    form_submissions: Rows
    volunteer: dict[str, Any] | None  # the volunteer profile, shifts, hours and qualifications
    donation_inquiries: Rows
    journeys: Rows  # the automated sequences the person is or was in
    exported_at: str
