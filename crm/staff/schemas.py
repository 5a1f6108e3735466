"""The staff API's audit shapes: one event, and a page of them."""

from __future__ import annotations

from typing import Any

import msgspec

from crm.staff.models import AuditEvent, Staff, StaffRole


class AuditEventPublic(msgspec.Struct, kw_only=True):
    id: int
    staff_email: str
    action: str  # e.g. contact.export, segment.preview, template.save
    target: str | None
    rows: int | None
    detail: dict[str, Any]
    created_at: str


class AuditPage(msgspec.Struct):
    items: list[AuditEventPublic]
    next_cursor: str | None


def audit_event_public(e: AuditEvent) -> AuditEventPublic:
    assert e.id is not None
    return AuditEventPublic(id=e.id, staff_email=e.staff_email, action=e.action, target=e.target, rows=e.rows,
                            detail=e.detail, created_at=e.created_at.isoformat())


class StaffPublic(msgspec.Struct, kw_only=True):
    id: int
    email: str
    role: str
    active: bool
    created_at: str


class StaffList(msgspec.Struct):
    items: list[StaffPublic]
    next_cursor: str | None = None


class StaffPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: StaffRole | None = None
    active: bool | None = None


class StaffToken(msgspec.Struct, kw_only=True):
    id: int
    email: str
    token: str  # shown only in this answer; only its hash is stored


def staff_public(s: Staff) -> StaffPublic:
    assert s.id is not None
    return StaffPublic(id=s.id, email=s.email, role=s.role, active=s.active, created_at=s.created_at.isoformat())
