"""The volunteer API's shapes (SPEC sections 5 and 11): bodies and answers as the OpenAPI document shows them.

Every body is checked again by the service that takes it; the routes pass that check as `explain`
(crm.http), so a 400 names every bad and unknown field at once, as it always did.
"""

from __future__ import annotations

import builtins
from typing import Any

import msgspec

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class VolunteerPatchBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/volunteers/{id}: move a status (with a note; `send_email` tells the person),
    change areas and availability, or pause until a date (null ends the pause)."""

    status: str | Unset = UNSET  # interested, contacted, screening, onboarding, active, paused, declined, inactive
    note: str | None | Unset = UNSET
    areas: list[str] | None | Unset = UNSET
    availability: list[str] | None | Unset = UNSET
    paused_until: str | None | Unset = UNSET  # YYYY-MM-DD
    send_email: bool | Unset = UNSET


class HistoryEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    at: str
    actor: str | None
    from_status: str | None
    to_status: str | None
    note: str | None
    detail: dict[str, Any] | None


class VolunteerPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    contact_id: int
    email: str | None
    first_name: str
    last_name: str
    phone: str
    language: str
    status: str
    areas: builtins.list[str]
    availability: builtins.list[str]
    postal_code: str
    skills: str
    languages: builtins.list[str]
    message: str
    paused_until: str | None
    last_contacted_at: str | None
    created_at: str
    updated_at: str
    history: builtins.list[HistoryEntry] | Unset = UNSET  # on one volunteer's page
    hours_approved: float | Unset = UNSET


class VolunteerPage(msgspec.Struct):
    items: builtins.list[VolunteerPublic]
    next_cursor: str | None


class OpportunityCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/volunteers/opportunities."""

    title: str
    area: str
    postal_code: str
    description: str | Unset = UNSET
    needed: int | None | Unset = UNSET
    schedule: str | Unset = UNSET
    starts_on: str | None | Unset = UNSET  # YYYY-MM-DD
    ends_on: str | None | Unset = UNSET
    availability: str | None | Unset = UNSET
    requires: builtins.list[str] | Unset = UNSET  # qualification type keys


class OpportunityPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/volunteers/opportunities/{id}: the fields present are replaced."""

    title: str | Unset = UNSET
    area: str | Unset = UNSET
    postal_code: str | Unset = UNSET
    description: str | Unset = UNSET
    needed: int | None | Unset = UNSET
    schedule: str | Unset = UNSET
    starts_on: str | None | Unset = UNSET
    ends_on: str | None | Unset = UNSET
    availability: str | None | Unset = UNSET
    requires: builtins.list[str] | Unset = UNSET


class OpportunityResponse(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    volunteer_id: int
    contact_id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str
    responded_at: str


class OpportunityPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    title: str
    area: str
    description: str
    postal_code: str
    needed: int | None
    schedule: str
    availability: str | None
    starts_on: str | None
    ends_on: str | None
    created_by: str | None
    created_at: str
    updated_at: str
    requires: builtins.list[str]
    responses: builtins.list[OpportunityResponse] | Unset = UNSET  # on one opportunity's page
    response_count: int | Unset = UNSET


class OpportunityPage(msgspec.Struct):
    items: builtins.list[OpportunityPublic]
    next_cursor: str | None


# --- shifts, sign-ups, qualifications, hours (SPEC 11) -------------------------------------------


class ShiftCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/volunteers/opportunities/{id}/shifts: times in CRM_TIMEZONE unless they carry an offset."""

    starts_at: str
    ends_at: str
    capacity: int
    location: str | Unset = UNSET
    notes: str | Unset = UNSET
    repeat: dict[str, Any] | None | Unset = UNSET  # {weekdays: [0-6], every_weeks, until}
    status: str | Unset = UNSET


class ShiftPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    starts_at: str | Unset = UNSET
    ends_at: str | Unset = UNSET
    capacity: int | Unset = UNSET
    location: str | Unset = UNSET
    notes: str | Unset = UNSET
    status: str | Unset = UNSET  # open or cancelled


class ShiftPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    opportunity_id: int
    starts_at: str  # in CRM_TIMEZONE, with its offset
    ends_at: str
    starts_at_utc: str
    ends_at_utc: str
    capacity: int
    location: str
    notes: str
    status: str
    signed_up: int
    waitlisted: int
    offered: int
    remaining: int


class ShiftList(msgspec.Struct):
    items: builtins.list[ShiftPublic]


class SignupCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    volunteer_id: int


class SignupPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: str | Unset = UNSET  # cancelled, confirmed (accept an offer), completed, no_show
    hours: float | None | Unset = UNSET


class SignupPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    shift_id: int
    volunteer_id: int
    status: str
    position: int | None
    offer_expires_at: str | None
    hours: float | None
    created_at: str


class SignupList(msgspec.Struct):
    items: builtins.list[SignupPublic]


class QualificationTypeCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str  # lower-case letters, digits and dashes, like drivers-licence
    label: str
    valid_days: int | None | Unset = UNSET


class QualificationTypePublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    key: str
    label: str
    valid_days: int | None


class QualificationTypeList(msgspec.Struct):
    items: builtins.list[QualificationTypePublic]


class QualificationCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str
    obtained_on: str  # YYYY-MM-DD
    expires_on: str | None | Unset = UNSET
    note: str | Unset = UNSET


class QualificationPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    volunteer_id: int
    type: str
    obtained_on: str
    expires_on: str | None
    note: str
    verified_by: str | None
    created_at: str


class QualificationList(msgspec.Struct):
    items: builtins.list[QualificationPublic]


class HoursCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    date: str  # YYYY-MM-DD
    hours: float
    shift_id: int | None | Unset = UNSET
    note: str | Unset = UNSET


class HoursReview(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: str  # approved or rejected


class HoursPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    volunteer_id: int
    shift_id: int | None
    date: str
    hours: float
    note: str
    status: str
    logged_by: str | None
    reviewed_by: str | None
    created_at: str


class HoursList(msgspec.Struct):
    items: builtins.list[HoursPublic]


class HoursTotal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One row of approved hours, keyed by what was asked for (?by=volunteer|opportunity|month)."""

    volunteer: int | None | Unset = UNSET
    opportunity: int | None | Unset = UNSET
    month: str | Unset = UNSET
    hours: float
    records: int


class HoursTotals(msgspec.Struct):
    items: builtins.list[HoursTotal]


class VolunteerHoursTotal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    volunteer_id: int
    hours_approved: float


# --- the volunteer's own page, as JSON (a signed link, no login) ------------------------------------


class PortalSignupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    shift_id: int


class PortalVolunteer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    first_name: str
    language: str
    status: str
    shift_reminders: bool


class PortalShift(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    shift_id: int
    title: str
    location: str
    notes: str
    starts_at: str  # in the charity's time zone
    ends_at: str
    date: str
    starts: str  # HH:MM
    ends: str
    signup_id: int | Unset = UNSET  # on the person's own upcoming shifts
    status: str | Unset = UNSET
    position: int | None | Unset = UNSET
    offer_expires_at: str | None | Unset = UNSET


class PortalView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    volunteer: PortalVolunteer
    timezone: str
    upcoming: builtins.list[PortalShift]
    open_shifts: builtins.list[PortalShift]
    hours: builtins.list[HoursPublic]
    hours_approved: float
