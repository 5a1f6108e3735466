"""Reading the audit log (writing is crm.staff.service.audit)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session

from crm.db import keyset_page
from crm.staff.models import AuditEvent


def search(session: Session, action: str | None, staff: str | None, after_id: int | None, limit: int, *,
           since: dt.datetime | None = None, until: dt.datetime | None = None, target: str | None = None
           ) -> tuple[list[AuditEvent], bool]:
    """Newest first, keyset-paged by id; `until` is exclusive."""
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if staff:
        stmt = stmt.where(AuditEvent.staff_email == staff.strip().lower())
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if target:
        stmt = stmt.where(AuditEvent.target == target)
    return keyset_page(session, stmt, AuditEvent.id, after_id, limit)


def actions(session: Session) -> list[str]:
    """Every action written so far, for a filter's choices."""
    return sorted(session.scalars(select(AuditEvent.action).distinct()))


def members(session: Session) -> list[str]:
    return sorted(session.scalars(select(AuditEvent.staff_email).distinct()))
