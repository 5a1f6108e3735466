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
    # TOTP (crm.staff.totp): the base32 secret, set when enrolment starts and trusted once a code
    # from it was typed (totp_enabled); the last accepted time step, so one code signs in once.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled: bool = False
    totp_last_step: int | None = None
    # The open invitation's nonce: the link carries it, setting a password clears it (single use).
    invite_nonce: str | None = Field(default=None, max_length=64)
    # Bumped by sessions.end_all (sign out everywhere, deactivation): a session started under an
    # earlier value is over, wherever it is held (Redis keys are not all reachable from every caller).
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class StaffSession(SQLModel, table=True):
    """A console sign-in; the cookie carries the token, the row only its hash."""

    __tablename__ = "staff_session"
    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsoleSetting(SQLModel, table=True):
    """Console-wide settings admins change in the browser (e.g. who must use a second factor)."""

    __tablename__ = "console_setting"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)


class FormStash(SQLModel, table=True):
    """What a form carried when its session had expired, kept until the person signs in again."""

    __tablename__ = "staff_form_stash"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    path: str = Field(max_length=500)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


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
