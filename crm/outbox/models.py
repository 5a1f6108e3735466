"""Transactional email outbox: written in the same transaction as the thing that causes the email."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class OutboxState(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_state_due", "state", "next_attempt_at"),
                      Index("ix_outbox_to_template_created", "to_address", "template", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    template: str = Field(max_length=64)
    to_address: str = Field(max_length=320)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True, ondelete="CASCADE")
    language: str = Field(default="en", max_length=5)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Optional idempotency key: the same (key) is never queued twice (e.g. one welcome per subscription).
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    state: str = Field(default=OutboxState.pending, max_length=10)
    attempts: int = 0
    message_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    enqueued_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
