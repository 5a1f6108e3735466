"""Request bodies of the campaign lifecycle (SPEC section 5); the service checks what they mean.

Create and PATCH are not typed here yet: their 400 names every bad and every unknown field in
one answer (tests/campaigns/test_routes.py), and a msgspec Struct stops at the first.
"""

from __future__ import annotations

import msgspec


class ScheduleRequest(msgspec.Struct, kw_only=True):
    """POST /api/v1/campaigns/{id}/schedule; other members are ignored, as they always were."""

    send_at: str  # an ISO 8601 date-time, e.g. 2026-03-01T09:00:00Z; not in the past


class TestSendRequest(msgspec.Struct, kw_only=True):
    """POST /api/v1/campaigns/{id}/test: active staff addresses only (any other is a 400 naming it),
    rendered as `contact_id` (their real links; audited) or as a sample person whose links say so."""

    emails: list[str] | str | msgspec.UnsetType = msgspec.UNSET
    to: list[str] | str | msgspec.UnsetType = msgspec.UNSET  # the same, under its other name
    contact_id: int | msgspec.UnsetType = msgspec.UNSET
