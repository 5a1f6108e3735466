"""Staff users (token auth, roles) and the audit log of what they did."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class StaffRole(StrEnum):
    admin = "admin"
    editor = "editor"
    viewer = "viewer"


ROLE_RANK = {StaffRole.viewer: 0, StaffRole.editor: 1, StaffRole.admin: 2}


class Staff(SQLModel, table=True):
    __tablename__ = "staff"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    role: str = Field(max_length=10)
    token_hash: str = Field(max_length=64, unique=True)
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    staff_email: str = Field(max_length=320, index=True)
    action: str = Field(max_length=60)
    target: str | None = Field(default=None, max_length=200)
    rows: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
