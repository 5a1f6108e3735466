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
    # argon2id (crm.staff.passwords); None until the member sets a password, so no console sign-in.
    password_hash: str | None = Field(default=None, max_length=200)


class StaffSession(SQLModel, table=True):
    """A console sign-in; the cookie carries the token, the row only its hash."""

    __tablename__ = "staff_session"
    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffLoginFailure(SQLModel, table=True):
    """One failed console sign-in, counted per address and per client for lockout."""

    __tablename__ = "staff_login_failure"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    client: str = Field(max_length=64, index=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    staff_email: str = Field(max_length=320, index=True)
    action: str = Field(max_length=60)
    target: str | None = Field(default=None, max_length=200)
    rows: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
