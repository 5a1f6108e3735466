"""The campaign composer's form, both ways: stored campaign -> form values, posted form -> the API's body.

The posted body goes to the same `service.create` / `service.change` the API calls, so its checks
(and their field names) are the API's; `field_errors` puts each one next to its field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignState
from crm.contacts.models import ListKey
from crm.content.models import ContentItem
from crm.emailtemplates import service as emailtemplates
from crm.errors import Invalid
from crm.segments.models import Segment

LIST_LABELS = {ListKey.newsletter.value: "Newsletter and content digest",
               ListKey.volunteer_updates.value: "Volunteering news and opportunities",
               ListKey.donor_updates.value: "News for donors"}
STATE_LABELS = {CampaignState.draft: "Draft", CampaignState.scheduled: "Scheduled", CampaignState.sending: "Sending",
                CampaignState.paused: "Paused", CampaignState.sent: "Sent", CampaignState.cancelled: "Cancelled"}
TEXT_FIELDS = ("name", "subject", "body_html", "body_text")
SPANISH = ("subject", "body_html", "body_text")
CONTENT_PREFIX = "content_"
CHOICES_LIMIT = 200  # segments and content items offered in the composer, newest first


def values_of(campaign: Campaign | None) -> dict[str, Any]:
    """The composer's field values for a stored campaign (or a new one's defaults)."""
    if campaign is None:
        return {"name": "", "subject": "", "body_html": "", "body_text": "", "list": ListKey.newsletter.value,
                "segment_id": "", "template": "campaign", "content_ids": [], "track_opens": False,
                "track_clicks": False, **{f"es_{k}": "" for k in SPANISH}}
    es = (campaign.translations or {}).get("es") or {}
    return {**{k: getattr(campaign, k) or "" for k in TEXT_FIELDS}, "list": campaign.list,
            "segment_id": str(campaign.segment_id or ""), "template": campaign.template,
            "content_ids": list(campaign.content_ids or []), "track_opens": campaign.track_opens,
            "track_clicks": campaign.track_clicks, **{f"es_{k}": es.get(k) or "" for k in SPANISH}}


def posted_values(form: dict[str, str]) -> dict[str, Any]:
    """What was typed, to show again when the service refuses it."""
    out = {k: form.get(k, "") for k in (*TEXT_FIELDS, "list", "segment_id", "template")}
    out.update({f"es_{k}": form.get(f"es_{k}", "") for k in SPANISH})
    out["content_ids"] = _content_ids(form)
    out["track_opens"], out["track_clicks"] = "track_opens" in form, "track_clicks" in form
    return out


def _content_ids(form: dict[str, str]) -> list[Any]:
    # One checkbox per item, each with its own name, so a URL-encoded form maps to a plain dict.
    raw = [k.removeprefix(CONTENT_PREFIX) for k in form if k.startswith(CONTENT_PREFIX)]
    return [int(v) if v.isdigit() else v for v in raw]


def _blank_none(value: str | None) -> str | None:
    return value if value and value.strip() else None


def body_of(form: dict[str, str]) -> dict[str, Any]:
    """The API's campaign body from the posted form; the service judges every value."""
    segment = (form.get("segment_id") or "").strip()
    spanish = {k: _blank_none(form.get(f"es_{k}")) for k in SPANISH}
    return {
        "name": form.get("name", ""), "subject": form.get("subject", ""), "list": form.get("list", ""),
        "template": form.get("template") or "campaign",
        "segment_id": None if not segment else int(segment) if segment.isdigit() else segment,
        "body_html": _blank_none(form.get("body_html")), "body_text": _blank_none(form.get("body_text")),
        "content_ids": _content_ids(form),
        "translations": {"es": spanish} if any(spanish.values()) else {},
        "track_opens": "track_opens" in form, "track_clicks": "track_clicks" in form,
    }


def field_errors(exc: Invalid) -> dict[str, str]:
    """The service's reasons by field; one without a field goes above the form."""
    return dict(exc.fields) if exc.fields else {"form": exc.message}


def choices(session: Session, settings: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The composer's options: lists, saved segments, templates, content items.

    The newest of each, plus whatever the form already holds: an older segment or item must not
    vanish from a campaign just because it was saved again.
    """
    chosen_segment = int(values["segment_id"]) if str(values.get("segment_id", "")).isdigit() else None
    chosen_items = [i for i in values.get("content_ids", []) if isinstance(i, int)]
    segments = _newest_and(session, Segment.id, Segment.name, [chosen_segment] if chosen_segment else [])
    items = _newest_and(session, ContentItem.id, ContentItem.title, chosen_items)
    templates = [t["key"] for t in emailtemplates.list_all(session, settings)]
    if "campaign" in templates:  # the default first
        templates.remove("campaign")
        templates.insert(0, "campaign")
    return {"lists": LIST_LABELS, "segments": [{"id": i, "name": n} for i, n in segments],
            "templates": templates, "content_items": [{"id": i, "title": t} for i, t in items]}


def _newest_and(session: Session, id_col: Any, name_col: Any, keep: list[int]) -> list[tuple[int, str]]:
    rows = dict(session.execute(select(id_col, name_col).order_by(id_col.desc()).limit(CHOICES_LIMIT)).all())
    missing = [i for i in keep if i not in rows]
    if missing:
        rows.update(dict(session.execute(select(id_col, name_col).where(id_col.in_(missing))).all()))
    return sorted(rows.items(), reverse=True)


def send_at_of(value: str | None, timezone: str) -> str:
    """A datetime-local value, read in the organisation's time zone, as the ISO 8601 the service wants."""
    if not value or not value.strip():
        raise Invalid.field("send_at", "choose a date and time")
    try:
        local = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid.field("send_at", "must be a date and time such as 2026-03-01 09:00") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC).isoformat()


def formatter(timezone: str) -> Callable[[dt.datetime | None], str]:
    """Dates as people read them, in the organisation's time zone: "2 Dec 2026, 09:30 UTC"."""
    zone = ZoneInfo(timezone)

    def when(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        local = value.astimezone(zone)
        return f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"

    return when


def people(n: int) -> str:
    return "1 person" if n == 1 else f"{n:,} people"


def content_titles(session: Session, ids: list[int] | None) -> list[str]:
    """The chosen items' titles, in the campaign's order (a deleted item is named as such)."""
    if not ids:
        return []
    found = dict(session.execute(select(ContentItem.id, ContentItem.title).where(ContentItem.id.in_(ids))).all())
    return [found.get(i, f"Item {i} (deleted)") for i in ids]
