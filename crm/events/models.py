"""The event table: append-only; rows are only ever scrubbed (erasure), never changed otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_contact", "contact_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=64, index=True)
    # No foreign key: an erased contact's history stays countable, and no event write waits on a lock
    # of the contact row.
    contact_id: int | None = Field(default=None)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    occurred_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventUnpublished(SQLModel, table=True):
    """Events not yet fanned out to webhooks: written with the event, deleted by the fan-out.

    A queue of its own rather than a cursor over event ids: ids are taken at insert but become
    visible at commit, so a reader moving a cursor would skip an event whose transaction was slower.
    """

    __tablename__ = "event_unpublished"
    event_id: int = Field(primary_key=True, foreign_key="event.id", ondelete="CASCADE")
