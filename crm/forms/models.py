"""Form submissions, stored exactly as received before anything else happens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class FormSubmission(SQLModel, table=True):
    __tablename__ = "form_submission"
    id: int | None = Field(default=None, primary_key=True)
    form: str = Field(max_length=40, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True, ondelete="SET NULL")
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    received_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- what the website posts (documented in OpenAPI; semantic checks live in forms.service) ---



class _FormBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: str
    source_url: str | None = None
    website: str | None = None  # honeypot: people never see it, bots fill it


class NewsletterForm(_FormBody):
    first_name: str | None = None
    interests: list[str] | None = None
    language: str | None = None
    role: str | None = None
    frequency: str | None = None
    consent: bool | None = None


class VolunteerForm(_FormBody):
    first_name: str
    last_name: str
    phone: str | None = None
    postal_code: str
    areas: list[str]
    availability: list[str]
    skills: str | list[str] | None = None
    languages: list[str] | str | None = None
    message: str | None = None
    language: str | None = None
    newsletter: bool | None = None
    consent: bool | None = None


class DonationForm(_FormBody):
    first_name: str
    last_name: str
    phone: str | None = None
    inquiry_type: str
    amount_range: str | None = None
    message: str | None = None
    in_honor_of: str | None = None
    language: str | None = None
    newsletter: bool | None = None
    consent: bool | None = None
