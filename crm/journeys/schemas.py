"""Request bodies of the journeys API (SPEC 13). The service checks what they mean and names every
bad field in one 400 (`steps[1].wait.days: must be a whole number, 0 or more`)."""

from __future__ import annotations

import builtins
from typing import Any

import msgspec


class JourneyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/journeys."""

    name: str
    trigger: dict[str, Any]  # {"event": type, ...filters} or {"inactive_days": n}
    steps: builtins.list[Any]  # [{"wait": {"days"?, "hours"?, "minutes"?}, "subject", "body_html", "body_text", ...}]
    list: str = "newsletter"  # the list a person must be confirmed on to be mailed
    exit: builtins.list[Any] = []  # events that end a run; unsubscribing always does
    reentry: str = "never"  # never | after_exit | always
    include_imported: bool = False  # CSV imports and staff-made contacts stay out unless true
    track_opens: bool = False
    track_clicks: bool = False


class JourneyUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/journeys/{id}: the fields present are replaced; `steps` replaces the steps by position."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    trigger: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    steps: builtins.list[Any] | msgspec.UnsetType = msgspec.UNSET
    list: str | msgspec.UnsetType = msgspec.UNSET
    exit: builtins.list[Any] | msgspec.UnsetType = msgspec.UNSET
    reentry: str | msgspec.UnsetType = msgspec.UNSET
    include_imported: bool | msgspec.UnsetType = msgspec.UNSET
    track_opens: bool | msgspec.UnsetType = msgspec.UNSET
    track_clicks: bool | msgspec.UnsetType = msgspec.UNSET


class JourneyStepPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    position: int
    wait: dict[str, int]  # {days?, hours?, minutes?} after the previous step (the first: after enrolment)
    subject: str
    body_html: str | None
    body_text: str | None
    translations: dict[str, Any]
    template: str
    segment: dict[str, Any] | None  # the step is skipped for a person these rules do not match


class JourneyPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    key: str | None  # the built-in examples' name
    name: str
    list: str
    trigger: dict[str, Any]
    steps: builtins.list[JourneyStepPublic]
    exit: builtins.list[Any]
    reentry: str
    include_imported: bool
    track_opens: bool
    track_clicks: bool
    state: str  # draft, active or paused
    activated_at: str | None
    created_by: str | None
    created_at: str | None
    updated_at: str | None


class JourneyPage(msgspec.Struct):
    items: builtins.list[JourneyPublic]
    next_cursor: str | None


class StepStats(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    position: int
    subject: str
    entered: int
    sent: int
    skipped: int
    queued: int
    failed: int
    exited: int
    opened: int
    clicked: int


class JourneyStats(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    journey_id: int
    state: str
    steps: builtins.list[StepStats]
    enrolments: dict[str, int]  # runs by state: active, completed, exited


class JourneyRun(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    journey_id: int
    journey: str
    round: int
    state: str
    steps_handed: int
    steps: int
    waiting_on_send: bool
    enrolled_at: str | None
    next_wait_from: str | None
    finished_at: str | None
    exit_reason: str | None


class JourneyRuns(msgspec.Struct):
    items: builtins.list[JourneyRun]
    next_cursor: str | None
