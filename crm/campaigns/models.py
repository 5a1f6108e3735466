"""Campaigns, their deliveries (one row per recipient) and the digest ledger.

The delivery table is the sending pipeline's only memory: planning inserts rows,
senders claim and finish them, a restart resumes from them.
"""

from __future__ import annotations

import builtins
import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class CampaignKind(StrEnum):
    campaign = "campaign"  # staff broadcast to a segment
    digest = "digest"  # one personal digest run (items per recipient in digest_item)
    opportunity = "opportunity"  # volunteer opportunity invitations
    journey = "journey"  # one step of a journey (crm/journeys): open-ended, never `sent`


class CampaignState(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    paused = "paused"
    sent = "sent"
    cancelled = "cancelled"


class DeliveryStatus(StrEnum):
    queued = "queued"  # planned, waiting (or waiting for next_attempt_at after a 4xx)
    sending = "sending"  # claimed by a sender whose lease runs until lease_until
    sent = "sent"
    failed = "failed"  # permanent failure or retries exhausted
    bounced = "bounced"  # permanent recipient failure (5.1.x) or a bounce webhook
    skipped = "skipped"  # no longer eligible at claim time (unsubscribed mid-campaign, ...)
    cancelled = "cancelled"  # the campaign was cancelled before this one went


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=CampaignKind.campaign, max_length=20, index=True)
    name: str = Field(max_length=200)
    subject: str = Field(default="", max_length=500)
    list: str = Field(default="newsletter", max_length=32)
    # RESTRICT: a segment in use cannot be deleted (the segments service turns the refusal into a 409).
    segment_id: int | None = Field(default=None, index=True, foreign_key="segment.id", ondelete="RESTRICT")
    template: str = Field(default="campaign", max_length=64)
    body_html: str | None = Field(default=None)
    body_text: str | None = Field(default=None)
    content_ids: builtins.list[int] = Field(default_factory=builtins.list, sa_column=Column(JSON, nullable=False))
    # Per-language overrides: {"es": {"subject": ..., "body_html": ..., "body_text": ...}}
    translations: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=CampaignState.draft, max_length=20, index=True)
    # Set when the campaign paused itself (failure or complaint rate, crm.campaigns.autopause); cleared on resume.
    paused_reason: str | None = Field(default=None, max_length=500)
    track_opens: bool = False
    track_clicks: bool = False
    send_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    planned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # set once planning finished
    started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    frequency: str | None = Field(default=None, max_length=10)  # digests: weekly / monthly
    opportunity_id: int | None = Field(default=None)  # opportunity invitations
    created_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_delivery_campaign_contact"),
        Index("ix_delivery_claim", "campaign_id", "status", "next_attempt_at"),
        Index("ix_delivery_contact", "contact_id"),
        Index("ix_delivery_sent_at", "sent_at"),
        Index("ix_delivery_complained_at", "complained_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contact.id", ondelete="CASCADE")
    status: str = Field(default=DeliveryStatus.queued, max_length=12)
    attempts: int = 0
    next_attempt_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_id: str | None = Field(default=None, max_length=200, index=True)
    error: str | None = Field(default=None, max_length=1000)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    clicked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    unsubscribed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    bounced_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A complaint (spam report) about a message that was delivered: its status stays `sent`.
    complained_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class DigestItem(SQLModel, table=True):
    """The never-twice ledger: which content item went (or is going) to which contact, in which run."""

    __tablename__ = "digest_item"
    __table_args__ = (
        UniqueConstraint("contact_id", "content_id", name="uq_digest_item_contact_content"),
        Index("ix_digest_item_campaign_contact", "campaign_id", "contact_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys on purpose: rows are only ever written by the digest planner's INSERT ... SELECT
    # from existing campaigns, contacts and content, and neither contacts (erasure keeps the row) nor
    # campaigns are deleted. Two FK checks per row were ~40 % of planning a 100k-reader run.
    campaign_id: int = Field()
    contact_id: int = Field()
    content_id: int = Field(index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
