"""The webhook endpoints API's shapes (SPEC section 12); the service checks what the bodies mean."""

from __future__ import annotations

import msgspec

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class EndpointCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str  # https (http to loopback in development); checked against private addresses in production
    events: list[str]  # event types of SPEC 12, or ["*"] for all
    description: str | Unset = UNSET


class EndpointPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str | Unset = UNSET
    events: list[str] | Unset = UNSET
    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET


class EndpointPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    rotating_until: str | None  # the old secret still signs until then
    last_success_at: str | None
    failing_since: str | None
    created_at: str
    updated_at: str
    secret: str | Unset = UNSET  # shown once: on create and on rotation


class EndpointPage(msgspec.Struct):
    items: list[EndpointPublic]
    next_cursor: str | None


class TestEvent(msgspec.Struct, kw_only=True):
    delivery_id: int
    webhook_id: str
    type: str


class Replay(msgspec.Struct, kw_only=True):
    delivery_id: int
    webhook_id: str
    state: str


class Attempt(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    at: str
    status: int | None
    duration_ms: int
    error: str | None
    response_bytes: int


class DeliveryPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    webhook_id: str
    type: str
    event_id: int
    state: str
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    attempts: list[Attempt]


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryPublic]
    next_cursor: str | None
