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
