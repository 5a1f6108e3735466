"""The preference centre as JSON (GET and PUT /api/v1/preferences/{token}), for the website's own UI.

PUT takes the GET shape back, changed; the service checks every field and names each bad one.
"""

from __future__ import annotations

from typing import Any

import msgspec

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class VolunteerPreferences(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    areas: list[str]
    availability: list[str]
    paused_until: str | None  # YYYY-MM-DD: no volunteer email until then
    shift_reminders: bool


class Preferences(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str | None
    first_name: str
    language: str
    status: str
    interests: list[str]
    frequency: str  # of the newsletter: daily, weekly or monthly
    lists: dict[str, str]  # list key -> pending | confirmed | unsubscribed
    volunteer: VolunteerPreferences | Unset = UNSET  # for volunteers only
    changed: list[str] | Unset = UNSET  # after a PUT: what it changed
    check_inbox: list[str] | Unset = UNSET  # after a PUT: lists whose confirmation email just went out


class PreferencesChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str | Unset = UNSET  # must be the link's own address
    first_name: str | Unset = UNSET
    language: str | Unset = UNSET
    status: str | Unset = UNSET  # must be unchanged
    interests: list[str] | Unset = UNSET
    frequency: str | Unset = UNSET
    lists: dict[str, str] | Unset = UNSET
    volunteer: dict[str, Any] | Unset = UNSET  # {areas?, availability?, paused_until?, shift_reminders?}
