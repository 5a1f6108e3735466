"""Volunteer profiles and their pipeline history."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class Area(StrEnum):
    transport_to_treatment = "transport-to-treatment"
    lodging_support = "lodging-support"
    events = "events"
    peer_support = "peer-support"
    office = "office"
    advocacy = "advocacy"
    fundraising = "fundraising"


class Availability(StrEnum):
    weekday_daytime = "weekday-daytime"
    weekday_evenings = "weekday-evenings"
    weekends = "weekends"


class VolunteerStatus(StrEnum):
    interested = "interested"
    contacted = "contacted"
    onboarding = "onboarding"
    active = "active"
    paused = "paused"
    inactive = "inactive"


class Volunteer(SQLModel, table=True):
    __tablename__ = "volunteer"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", unique=True, ondelete="CASCADE")
    status: str = Field(default=VolunteerStatus.interested, max_length=20, index=True)
    skills: str = Field(default="", max_length=2000)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str = Field(default="", max_length=5000)
    postal_code: str = Field(default="", max_length=20, index=True)
    travel_radius_km: int | None = None
    paused_until: dt.date | None = None
    # The volunteer's own switch (preference centre): reminders before their shifts.
    shift_reminders: bool = Field(default=True, sa_column_kwargs={"server_default": "1"})
    last_contacted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VolunteerArea(SQLModel, table=True):
    __tablename__ = "volunteer_area"
    __table_args__ = (Index("ix_volunteer_area_volunteer", "volunteer_id"),)
    area: str = Field(primary_key=True, max_length=40)
    volunteer_id: int = Field(foreign_key="volunteer.id", primary_key=True, ondelete="CASCADE")


class VolunteerAvailability(SQLModel, table=True):
    __tablename__ = "volunteer_availability"
    __table_args__ = (Index("ix_volunteer_availability_volunteer", "volunteer_id"),)
    slot: str = Field(primary_key=True, max_length=40)
    volunteer_id: int = Field(foreign_key="volunteer.id", primary_key=True, ondelete="CASCADE")


class VolunteerEvent(SQLModel, table=True):
    """Every pipeline move or note: who, when, from what to what."""

    __tablename__ = "volunteer_event"
    id: int | None = Field(default=None, primary_key=True)
    volunteer_id: int = Field(foreign_key="volunteer.id", index=True, ondelete="CASCADE")
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    note: str = Field(default="", max_length=5000)
    actor: str = Field(max_length=320)  # staff email, or "self" for preference-centre changes, "form"
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Opportunity(SQLModel, table=True):
    """Something staff need volunteers for: a driver on Tuesdays, helpers at a gala."""

    __tablename__ = "opportunity"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    area: str = Field(max_length=40, index=True)
    description: str = Field(default="", max_length=5000)
    postal_code: str = Field(default="", max_length=20)
    needed: int = Field(default=1, ge=1)
    schedule: str = Field(default="", max_length=500)
    # When set, only volunteers with this slot match; None means any availability fits.
    availability: str | None = Field(default=None, max_length=40)
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    # Qualification type keys a volunteer must hold, valid on the shift's date, to sign up.
    requires: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    created_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OpportunityResponse(SQLModel, table=True):
    """A volunteer said "I'm interested" (the one-click link of an invitation)."""

    __tablename__ = "opportunity_response"
    __table_args__ = (
        UniqueConstraint("opportunity_id", "volunteer_id", name="uq_opportunity_response"),
        Index("ix_opportunity_response_volunteer", "volunteer_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    opportunity_id: int = Field(foreign_key="opportunity.id", ondelete="CASCADE")
    volunteer_id: int = Field(foreign_key="volunteer.id", ondelete="CASCADE")
    responded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QualificationType(SQLModel, table=True):
    """A check a role can require: drivers-licence, auto-insurance, background-check."""

    __tablename__ = "qualification_type"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=60, unique=True)
    label: str = Field(max_length=200)
    valid_days: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VolunteerQualification(SQLModel, table=True):
    __tablename__ = "volunteer_qualification"
    __table_args__ = (Index("ix_volunteer_qualification_volunteer", "volunteer_id", "type_key"),
                      Index("ix_volunteer_qualification_expires", "expires_on"))
    id: int | None = Field(default=None, primary_key=True)
    volunteer_id: int = Field(foreign_key="volunteer.id", ondelete="CASCADE")
    type_key: str = Field(max_length=60)
    obtained_on: dt.date
    expires_on: dt.date | None = None
    note: str = Field(default="", max_length=2000)
    verified_by: str = Field(max_length=320)
    # Set once the expiry warning went: one warning per qualification and window.
    warned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ShiftStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class Shift(SQLModel, table=True):
    __tablename__ = "shift"
    __table_args__ = (Index("ix_shift_opportunity_starts", "opportunity_id", "starts_at"),
                      Index("ix_shift_starts", "starts_at"))
    id: int | None = Field(default=None, primary_key=True)
    opportunity_id: int = Field(foreign_key="opportunity.id", ondelete="CASCADE")
    starts_at: dt.datetime = Field(sa_type=UTCDateTime)
    ends_at: dt.datetime = Field(sa_type=UTCDateTime)
    capacity: int = Field(ge=1)
    location: str = Field(default="", max_length=300)
    notes: str = Field(default="", max_length=2000)
    status: str = Field(default=ShiftStatus.scheduled, max_length=12)
    created_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SignupStatus(StrEnum):
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    offered = "offered"  # a waitlisted volunteer holding a freed place until offer_expires_at
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"
    offer_lapsed = "offer_lapsed"


class ShiftSignup(SQLModel, table=True):
    __tablename__ = "shift_signup"
    __table_args__ = (UniqueConstraint("shift_id", "volunteer_id", name="uq_shift_signup"),
                      Index("ix_shift_signup_volunteer", "volunteer_id", "status"),
                      Index("ix_shift_signup_shift_status", "shift_id", "status"))
    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", ondelete="CASCADE")
    volunteer_id: int = Field(foreign_key="volunteer.id", ondelete="CASCADE")
    status: str = Field(max_length=14)
    position: int | None = None  # order on the waitlist
    offer_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Claimed with a conditional UPDATE so a reminder goes once even across restarts.
    reminder_sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    hours: float | None = None
    actor: str = Field(max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class HoursStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class VolunteerHours(SQLModel, table=True):
    __tablename__ = "volunteer_hours"
    __table_args__ = (Index("ix_volunteer_hours_volunteer", "volunteer_id", "status"),
                      Index("ix_volunteer_hours_status_date", "status", "date"))
    id: int | None = Field(default=None, primary_key=True)
    volunteer_id: int = Field(foreign_key="volunteer.id", ondelete="CASCADE")
    shift_id: int | None = Field(default=None, foreign_key="shift.id", ondelete="SET NULL")
    # Hours from marking a sign-up completed: one row per sign-up, updated rather than added twice.
    signup_id: int | None = Field(default=None, unique=True)
    date: dt.date
    hours: float
    note: str = Field(default="", max_length=2000)
    status: str = Field(default=HoursStatus.pending, max_length=10)
    logged_by: str = Field(max_length=320)  # staff email, or "self"
    reviewed_by: str | None = Field(default=None, max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
