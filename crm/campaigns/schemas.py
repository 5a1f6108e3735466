"""The campaign API's shapes (SPEC section 5); the service checks what the bodies mean.

A typed body stops at its first bad field; the create and PATCH routes pass the service's own
check as `explain` (crm.http), so their 400 still names every bad and unknown field at once.
"""

from __future__ import annotations

import builtins
from typing import Any

import msgspec

from crm.campaigns.models import CampaignKind, CampaignState
from crm.contacts.models import ListKey

# {"es": {"subject": ..., "body_html": ..., "body_text": ...}}: the versions for other languages.
Translations = dict[str, dict[str, str | None]]


class CampaignCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/campaigns: a draft. Subjects and bodies are templates, checked by rendering them."""

    name: str
    subject: str
    list: ListKey = ListKey.newsletter  # the list a person must be confirmed on to be mailed
    segment_id: int | None = None  # who on that list; null is everyone on it
    template: str = "campaign"  # the email layout's key (GET /api/v1/templates)
    body_html: str | None = None
    body_text: str | None = None
    content_ids: builtins.list[int] = []
    translations: Translations = {}
    track_opens: bool = False
    track_clicks: bool = False


class CampaignPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/campaigns/{id}: a draft's fields that are present are replaced."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    subject: str | msgspec.UnsetType = msgspec.UNSET
    list: ListKey | msgspec.UnsetType = msgspec.UNSET
    segment_id: int | None | msgspec.UnsetType = msgspec.UNSET
    template: str | msgspec.UnsetType = msgspec.UNSET
    body_html: str | None | msgspec.UnsetType = msgspec.UNSET
    body_text: str | None | msgspec.UnsetType = msgspec.UNSET
    content_ids: builtins.list[int] | None | msgspec.UnsetType = msgspec.UNSET
    translations: Translations | None | msgspec.UnsetType = msgspec.UNSET
    track_opens: bool | msgspec.UnsetType = msgspec.UNSET
    track_clicks: bool | msgspec.UnsetType = msgspec.UNSET


class CampaignPublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    kind: CampaignKind
    name: str
    subject: str
    list: str
    segment_id: int | None
    template: str
    body_html: str | None
    body_text: str | None
    content_ids: builtins.list[int]
    translations: dict[str, Any]
    state: CampaignState
    paused_reason: str | None = None  # why a campaign paused itself (SPEC 14)
    track_opens: bool
    track_clicks: bool
    send_at: str | None
    planned_at: str | None
    started_at: str | None
    finished_at: str | None
    created_by: str | None
    created_at: str | None
    updated_at: str | None


class CampaignPage(msgspec.Struct):
    items: builtins.list[CampaignPublic]
    next_cursor: str | None


class CampaignStats(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    state: CampaignState
    paused_reason: str | None  # why it paused itself (failures or complaints over their limits)
    complained: int
    failure_rate: float  # permanent failures (hard bounces included) per attempt, in percent
    complaint_rate: float  # complaints per message sent, in percent
    recipients: int
    queued: int
    sent: int
    failed: int
    bounced: int
    unsubscribed: int
    opened: int
    clicked: int
    skipped: int
    cancelled: int


class TestSendResult(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sent: int
    emails: builtins.list[str]
    contact_id: int | None


class ScheduleRequest(msgspec.Struct, kw_only=True):
    """POST /api/v1/campaigns/{id}/schedule; other members are ignored, as they always were."""

    send_at: str  # an ISO 8601 date-time, e.g. 2026-03-01T09:00:00Z; not in the past


class TestSendRequest(msgspec.Struct, kw_only=True):
    """POST /api/v1/campaigns/{id}/test: active staff addresses only (any other is a 400 naming it),
    rendered as `contact_id` (their real links; audited) or as a sample person whose links say so."""

    emails: list[str] | str | msgspec.UnsetType = msgspec.UNSET
    to: list[str] | str | msgspec.UnsetType = msgspec.UNSET  # the same, under its other name
    contact_id: int | msgspec.UnsetType = msgspec.UNSET


class DigestRunRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    frequency: str  # daily, weekly or monthly


class DigestRunStarted(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    run_id: int
    frequency: str
    recipients: int
    items: int
    planned: bool


class DigestStats(CampaignStats, kw_only=True, forbid_unknown_fields=True):
    run_id: int
    frequency: str
    items: int


class DigestPreview(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact_id: int
    frequency: str
    language: str
    eligible: bool
    due: bool
    last_digest_at: str | None
    would_send: bool
    items: builtins.list[dict[str, Any]]  # the content items, newest first, with their topics
    subject: str | None
    text: str | None
    html: str | None


class InvitationsQueued(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    opportunity_id: int
    campaign_id: int | None
    queued: int


class BounceEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str  # bounce or complaint
    email: str
    bounce_type: str | None = None  # hard (the default) or soft
    message_id: str | None = None  # the Message-ID we sent, to mark that delivery bounced


class BounceReport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/webhooks/bounces, from the mail provider (header X-CRM-Webhook-Secret)."""

    events: builtins.list[BounceEvent]


class BounceCounts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    accepted: int  # events in the report
    suppressed: int
    soft: int
    ignored: int
