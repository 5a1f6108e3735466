"""Reading the audit log (writing is crm.staff.service.audit)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from crm.db import keyset_page
from crm.staff.models import AuditEvent


def search(session: Session, action: str | None, staff: str | None, after_id: int | None, limit: int
           ) -> tuple[list[AuditEvent], bool]:
    """Newest first, keyset-paged by id."""
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if staff:
        stmt = stmt.where(AuditEvent.staff_email == staff.strip().lower())
    return keyset_page(session, stmt, AuditEvent.id, after_id, limit)
