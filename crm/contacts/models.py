"""Contacts: one row per person, their interests, tags, subscriptions, consent and suppression."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class ContactStatus(StrEnum):
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"
    erased = "erased"


class Role(StrEnum):
    patient = "patient"
    caregiver = "caregiver"
    family = "family"
    survivor = "survivor"
    professional = "professional"
    supporter = "supporter"
    other = "other"


class Language(StrEnum):
    en = "en"
    es = "es"


class ListKey(StrEnum):
    newsletter = "newsletter"
    volunteer_updates = "volunteer-updates"
    donor_updates = "donor-updates"


class SubscriptionState(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    unsubscribed = "unsubscribed"


class Frequency(StrEnum):
    weekly = "weekly"
    monthly = "monthly"
    never = "never"


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _ts_opt(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


class Interest(SQLModel, table=True):
    __tablename__ = "interest"
    key: str = Field(primary_key=True, max_length=64)
    label: str = Field(max_length=200)
    description: str = Field(default="", max_length=1000)
    label_es: str = Field(default="", max_length=200)
    description_es: str = Field(default="", max_length=1000)
    position: int = 0


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        Index("ix_contact_status_id", "status", "id"),
        Index("ix_contact_postal_code", "postal_code"),
        # Segments: "people near 303.. who speak es, caregivers" is a prefix range on PostgreSQL
        # whatever the collation (pattern ops), with language and role read from the index.
        Index("ix_contact_postal_prefix", "postal_code", "language", "role", "status",
              postgresql_ops={"postal_code": "varchar_pattern_ops"}),
        Index("ix_contact_last_engaged_at", "last_engaged_at"),  # segments' "engaged within N days"
    )
    id: int | None = Field(default=None, primary_key=True)
    # email is email-validator's normalized form, as the person typed its local part;
    # email_key is its lower-case twin and the one identity we dedupe on.
    email: str | None = Field(default=None, max_length=320)
    email_key: str | None = Field(default=None, max_length=320, unique=True)
    # Salted hash of email_key: lets the mailing gate join the suppression list in SQL.
    email_hash: str | None = Field(default=None, max_length=64, index=True)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=40)
    postal_code: str = Field(default="", max_length=20)
    language: str = Field(default=Language.en, max_length=5)
    role: str | None = Field(default=None, max_length=20)
    status: str = Field(default=ContactStatus.active, max_length=20, index=True)
    bereaved: bool = Field(default=False)
    soft_bounces: int = 0
    last_engaged_at: dt.datetime | None = _ts_opt()
    created_at: dt.datetime = _ts(index=True)
    updated_at: dt.datetime = _ts()
    erased_at: dt.datetime | None = _ts_opt()


class ContactInterest(SQLModel, table=True):
    """Link table keyed (interest_key, contact_id) so a segment count is an index-only scan."""

    __tablename__ = "contact_interest"
    __table_args__ = (Index("ix_contact_interest_contact", "contact_id"),)
    interest_key: str = Field(foreign_key="interest.key", primary_key=True, max_length=64)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")


class ContactTag(SQLModel, table=True):
    __tablename__ = "contact_tag"
    __table_args__ = (Index("ix_contact_tag_contact", "contact_id"),)
    tag: str = Field(primary_key=True, max_length=64)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (
        UniqueConstraint("contact_id", "list", name="uq_subscription_contact_list"),
        Index("ix_subscription_list_state_contact", "list", "state", "contact_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", ondelete="CASCADE")
    list: str = Field(max_length=32)
    state: str = Field(default=SubscriptionState.pending, max_length=20)
    frequency: str | None = Field(default=None, max_length=10)  # newsletter only
    created_at: dt.datetime = _ts()
    confirmed_at: dt.datetime | None = _ts_opt()
    unsubscribed_at: dt.datetime | None = _ts_opt()
    welcomed_at: dt.datetime | None = _ts_opt()
    last_digest_at: dt.datetime | None = _ts_opt()


class MailableSubscription(SQLModel, table=True):
    """(list, contact) pairs that pass the mailing gate: active, confirmed on the list, not suppressed.

    Written only by database triggers (migration 0015) in the transaction that changes a
    subscription, a contact's status or address, or the suppression list; read by audience
    counts and plans, which then touch one narrow index instead of every contact row.
    """

    __tablename__ = "mailable_subscription"
    __table_args__ = (Index("ix_mailable_subscription_contact", "contact_id"),)
    list: str = Field(primary_key=True, max_length=32)
    contact_id: int = Field(primary_key=True)


class MailableInterest(SQLModel, table=True):
    """(list, interest, contact) for each mailable_subscription row and each of that contact's interests.

    Written only by database triggers (migration 0017) on mailable_subscription and
    contact_interest; read by counts through a list's gate that name interests, which then scan
    only the mailable readers of each interest.
    """

    __tablename__ = "mailable_interest"
    __table_args__ = (Index("ix_mailable_interest_contact", "contact_id"),)
    list: str = Field(primary_key=True, max_length=32)
    interest_key: str = Field(primary_key=True, max_length=64)
    contact_id: int = Field(primary_key=True)


class ConsentEvent(SQLModel, table=True):
    """Append-only proof of every signup, confirmation, preference change and unsubscribe."""

    __tablename__ = "consent_event"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True, ondelete="SET NULL")
    action: str = Field(max_length=40)  # signup, confirm, unsubscribe, preferences, staff-create, ...
    list: str | None = Field(default=None, max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=40)  # newsletter-form, volunteer-form, preferences, one-click, staff, ...
    source_url: str | None = Field(default=None, max_length=2000)
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    consent_version: str | None = Field(default=None, max_length=40)
    consent_text_hash: str | None = Field(default=None, max_length=64)
    staff_email: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = _ts()


class Suppression(SQLModel, table=True):
    """Addresses campaigns must never reach again, kept only as a salted hash."""

    __tablename__ = "suppression"
    email_hash: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=20)  # unsubscribed, bounced, complained, erased, manual
    created_at: dt.datetime = _ts()
    # Readable by staff on the suppression list until the person is erased (then None, hash only).
    email: str | None = Field(default=None, max_length=320)
    note: str | None = Field(default=None, max_length=500)  # why staff added it by hand
    added_by: str | None = Field(default=None, max_length=320)


class AppSecret(SQLModel, table=True):
    """Values generated once per installation by a migration (e.g. the suppression salt)."""

    __tablename__ = "app_secret"
    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
