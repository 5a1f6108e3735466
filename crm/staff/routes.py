"""Staff API: the audit log (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from crm.http import db, decode_id_cursor, encode_cursor, requires_admin
from crm.staff import audit
from crm.staff.schemas import AuditPage, audit_event_public


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]
    guards = [requires_admin]

    @get("/", sync_to_thread=True)
    def list_events(self, request: Request[Any, Any, Any], action: str | None = None, staff: str | None = None,
                    cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)) -> AuditPage:
        after = decode_id_cursor(cursor)
        with db(request) as session:
            rows, more = audit.search(session, action, staff, after, limit)
            return AuditPage([audit_event_public(e) for e in rows], encode_cursor(rows[-1].id) if more and rows else None)
