"""Webhook endpoints, one delivery row per (event, endpoint), and one row per attempt."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class DeliveryState(StrEnum):
    pending = "pending"
    delivering = "delivering"
    delivered = "delivered"
    failed = "failed"


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=200)
    # After a rotation the old secret still signs until old_secret_until (both signatures sent).
    old_secret: str | None = Field(default=None, max_length=200)
    old_secret_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    # Start of the current run of failures (None after a success): 3 days of it disables the endpoint.
    failing_since: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery_endpoint_event"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        # "Is an earlier event of this contact still owed to this endpoint?"
        Index("ix_webhook_delivery_order", "endpoint_id", "contact_id", "state", "event_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", ondelete="CASCADE")
    event_id: int = Field(foreign_key="event.id")
    contact_id: int | None = Field(default=None)
    type: str = Field(max_length=64)
    webhook_id: str = Field(max_length=64)
    state: str = Field(default=DeliveryState.pending, max_length=12)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "id"),
                      Index("ix_webhook_attempt_at", "at"))
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", ondelete="CASCADE")
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: int | None = None
    duration_ms: int = 0
    error: str | None = Field(default=None, max_length=500)
    response_bytes: int = 0
