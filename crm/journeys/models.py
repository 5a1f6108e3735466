"""Journeys (SPEC 13): a trigger, linear steps with waits, and one enrolment row per person and run.

Sending is the campaign pipeline's: each (step, round) has a hidden campaign of kind `journey`, and
each (enrolment, step) is one delivery row in it. The delivery table's unique (campaign, contact)
is therefore unique (journey, person, round, step): a step goes to a run of a person at most once,
whatever the crashes, redelivered tasks or duplicated beats.
"""

from __future__ import annotations

import builtins
import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class JourneyState(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"


class Reentry(StrEnum):
    never = "never"  # one run per person, ever
    after_exit = "after_exit"  # again once the previous run ended (finished or left)
    always = "always"  # every trigger starts a fresh run; a run in progress ends first


class EnrolmentState(StrEnum):
    active = "active"
    completed = "completed"
    exited = "exited"


class Journey(SQLModel, table=True):
    __tablename__ = "journey"
    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, max_length=64, unique=True)  # built-in examples (crm demo)
    name: str = Field(max_length=200)
    list: str = Field(default="newsletter", max_length=32)
    trigger: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    exit: builtins.list[Any] = Field(default_factory=builtins.list, sa_column=Column(JSON, nullable=False))
    reentry: str = Field(default=Reentry.never, max_length=12)
    include_imported: bool = False
    track_opens: bool = False
    track_clicks: bool = False
    state: str = Field(default=JourneyState.draft, max_length=12, index=True)
    # Events with a larger id are still to be read. It moves only past events old enough that every
    # transaction which could still commit a smaller id has ended (ids are taken at insert, seen at commit).
    event_cursor: int = 0
    scanned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # last inactivity scan
    activated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JourneyStep(SQLModel, table=True):
    __tablename__ = "journey_step"
    __table_args__ = (UniqueConstraint("journey_id", "position", name="uq_journey_step_position"),)
    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="journey.id", ondelete="CASCADE", index=True)
    position: int
    wait: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    wait_minutes: int = 0
    subject: str = Field(max_length=500)
    body_html: str | None = None
    body_text: str | None = None
    translations: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    template: str = Field(default="campaign", max_length=64)
    segment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A step cut from the end of the list: kept for its statistics, never due again.
    removed: bool = False


class JourneyCampaign(SQLModel, table=True):
    """The hidden campaign that carries one step to one round of enrolments."""

    __tablename__ = "journey_campaign"
    step_id: int = Field(foreign_key="journey_step.id", ondelete="CASCADE", primary_key=True)
    round: int = Field(primary_key=True)
    journey_id: int = Field(foreign_key="journey.id", ondelete="CASCADE", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", ondelete="CASCADE", unique=True)


class JourneyEnrolment(SQLModel, table=True):
    __tablename__ = "journey_enrolment"
    __table_args__ = (
        UniqueConstraint("journey_id", "contact_id", "round", name="uq_journey_enrolment_round"),
        UniqueConstraint("journey_id", "event_id", name="uq_journey_enrolment_event"),
        # Never two runs of one person at once, whatever two ticks do.
        Index("uq_journey_enrolment_active", "journey_id", "contact_id", unique=True,
              postgresql_where=text("state = 'active'"), sqlite_where=text("state = 'active'")),
        Index("ix_journey_enrolment_due", "journey_id", "state", "step", "anchor_at"),
        Index("ix_journey_enrolment_pending", "pending_campaign_id", "contact_id"),
        Index("ix_journey_enrolment_contact", "contact_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="journey.id", ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contact.id", ondelete="CASCADE")
    round: int = 1
    state: str = Field(default=EnrolmentState.active, max_length=12)
    step: int = 0  # the position of the next step to hand to the pipeline
    # The campaign whose delivery to this person is still out; the next wait starts when it is done.
    pending_campaign_id: int | None = Field(default=None)
    anchor_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)  # the next wait counts from here
    event_id: int | None = Field(default=None)  # the trigger (none for inactivity)
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)  # when the trigger happened
    enrolled_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    exit_reason: str | None = Field(default=None, max_length=80)
    exit_step: int | None = None
