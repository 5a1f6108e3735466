"""Staff API for admins: the audit log and staff management."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from crm.http import current_staff, db, decode_id_cursor, encode_cursor, requires_admin
from crm.staff import audit, management, service
from crm.staff.schemas import (
    AuditPage,
    StaffList,
    StaffPatch,
    StaffPublic,
    StaffToken,
    audit_event_public,
    staff_public,
)


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


class StaffController(Controller):
    """Staff management for admins: who has access, with which role, and their API tokens."""

    path = "/api/v1/staff"
    tags = ["staff"]
    guards = [requires_admin]

    @get("/", sync_to_thread=True)
    def list_members(self, request: Request[Any, Any, Any]) -> StaffList:
        with db(request) as session:
            return StaffList([staff_public(s) for s in management.list_staff(session)])

    @get("/{staff_id:int}", sync_to_thread=True)
    def get_member(self, request: Request[Any, Any, Any], staff_id: int) -> StaffPublic:
        with db(request) as session:
            return staff_public(management.get_staff(session, staff_id))

    @patch("/{staff_id:int}", sync_to_thread=True)
    def change_member(self, request: Request[Any, Any, Any], staff_id: int, data: StaffPatch) -> StaffPublic:
        with db(request) as session:
            staff = management.apply_patch(session, management.get_staff(session, staff_id), data.role, data.active)
            service.audit(session, current_staff(request).email, "staff.change", target=staff.email,
                          detail={"role": data.role, "active": data.active})
            return staff_public(staff)

    @post("/{staff_id:int}/tokens", status_code=201, sync_to_thread=True)
    def issue_token(self, request: Request[Any, Any, Any], staff_id: int) -> StaffToken:
        with db(request) as session:
            staff = management.get_staff(session, staff_id)
            token = management.issue_token(session, staff)
            service.audit(session, current_staff(request).email, "staff.token_issue", target=staff.email)
            assert staff.id is not None
            return StaffToken(id=staff.id, email=staff.email, token=token)

    @delete("/{staff_id:int}/tokens", status_code=204, sync_to_thread=True)
    def revoke_token(self, request: Request[Any, Any, Any], staff_id: int) -> None:
        with db(request) as session:
            staff = management.get_staff(session, staff_id)
            management.revoke_token(session, staff)
            service.audit(session, current_staff(request).email, "staff.token_revoke", target=staff.email)
