"""Staff-authored email templates: override (or add to) the files in templates/email/."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class EmailTemplate(SQLModel, table=True):
    __tablename__ = "email_template"
    __table_args__ = (UniqueConstraint("key", "language", name="uq_email_template_key_language"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)
    language: str = Field(default="en", max_length=5)
    subject: str = Field(max_length=1000)
    body_html: str
    body_text: str
    updated_by: str = Field(max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
