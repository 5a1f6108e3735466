"""Staff users: bearer tokens (only their hash stored), roles, and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.addresses import normalize_email
from crm.db import utcnow
from crm.errors import Conflict, Invalid
from crm.staff.models import ROLE_RANK, AuditEvent, Staff, StaffRole


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def email_key(email: str) -> str:
    """The address as staff rows store it (the same normalisation contacts use)."""
    return normalize_email(email).key


def create_staff(session: Session, email: str, role: str) -> tuple[Staff, str]:
    """Create a staff member; returns the row and the token, which is never stored."""
    if role not in ROLE_RANK:
        raise Invalid.field("role", f"unknown role {role!r}; expected one of {', '.join(ROLE_RANK)}")
    normalized = normalize_email(email).key
    if session.scalars(select(Staff).where(Staff.email == normalized)).first():
        raise Conflict(f"staff member {normalized} already exists", fields={"email": "already exists"})
    token = "crm_" + secrets.token_urlsafe(32)
    staff = Staff(email=normalized, role=role, token_hash=hash_token(token), created_at=utcnow())
    session.add(staff)
    session.flush()
    return staff, token


def authenticate(session: Session, token: str) -> Staff | None:
    if not token:
        return None
    return session.scalars(select(Staff).where(Staff.token_hash == hash_token(token), Staff.active.is_(True))).first()


def has_role(staff: Staff, needed: StaffRole) -> bool:
    return ROLE_RANK[StaffRole(staff.role)] >= ROLE_RANK[needed]


def any_admin(session: Session) -> bool:
    return session.scalars(select(Staff.id).where(Staff.role == StaffRole.admin)).first() is not None


def audit(session: Session, staff_email: str, action: str, target: str | None = None, rows: int | None = None,
          detail: dict[str, Any] | None = None) -> None:
    session.add(AuditEvent(staff_email=staff_email, action=action, target=target, rows=rows, detail=detail or {},
                           created_at=utcnow()))
