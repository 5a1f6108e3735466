"""Campaigns: create, change, the lifecycle, stats. Render checks and test sends: crm.campaigns.proofs.

Lifecycle: draft -> scheduled -> sending -> sent, with paused and cancelled. Every move is a
conditional UPDATE on the current state, so ten concurrent launches flip the state once and
queue one plan; an illegal move is a Conflict naming both states. Wake-up calls (plan, send)
go out only after the caller's transaction commits (routes pass them to a background task).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import and_, case, func, select, update
from sqlmodel import Session

from crm.campaigns import autopause, pipeline
from crm.campaigns.compose import staff_template
from crm.campaigns.lifecycle import get, illegal, kick, move, refresh, start
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.campaigns.proofs import check_renders
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import ListKey, Subscription, SubscriptionState
from crm.db import keyset_page, utcnow
from crm.emailtemplates import service as emailtemplates
from crm.errors import Conflict, Invalid
from crm.mail import LANGUAGES
from crm.queue import publish
from crm.segments.models import Segment

S = CampaignState
FIELDS = ("name", "subject", "list", "segment_id", "template", "body_html", "body_text", "content_ids",
          "translations", "track_opens", "track_clicks")
EDITABLE_IN = (S.draft, S.scheduled, S.paused)
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# --- reading ----------------------------------------------------------------------------------



def as_dict(c: Campaign) -> dict[str, Any]:
    def iso(v: dt.datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {"id": c.id, "kind": c.kind, "name": c.name, "subject": c.subject, "list": c.list,
            "segment_id": c.segment_id, "template": c.template, "body_html": c.body_html,
            "body_text": c.body_text, "content_ids": list(c.content_ids or []),
            "translations": dict(c.translations or {}), "state": c.state, "paused_reason": c.paused_reason,
            "track_opens": c.track_opens,
            "track_clicks": c.track_clicks, "send_at": iso(c.send_at), "planned_at": iso(c.planned_at),
            "started_at": iso(c.started_at), "finished_at": iso(c.finished_at), "created_by": c.created_by,
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at)}


def list_campaigns(session: Session, after_id: int | None, limit: int, state: str | None = None
                   ) -> tuple[list[Campaign], bool]:
    stmt = select(Campaign)
    if state:
        stmt = stmt.where(Campaign.state == state)
    return keyset_page(session, stmt, Campaign.id, after_id, limit)


# --- validation -------------------------------------------------------------------------------


def _template_exists(settings: Settings, key: str) -> bool:
    if (settings.templates_dir / key).is_dir():
        return True
    try:
        emailtemplates.load(None, settings, key, "en")  # type: ignore[arg-type]
        return True
    except Exception:  # noqa: BLE001 - whatever it raises, the key is not usable
        return False


def _staff_source(value: Any, name: str, *, html: bool, max_length: int = 200_000) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid.field(name, "must be text")
    if len(value) > max_length:
        raise Invalid.field(name, f"must be at most {max_length} characters")
    try:
        staff_template(value, html=html)
    except TemplateError as exc:
        raise Invalid.field(name, f"template error: {exc}") from None
    return value


# One parser per field, each `(session, settings, value) -> parsed`, raising Invalid naming its field.
Parser = Callable[[Session, Settings, Any], Any]


def _name(_s: Session, _c: Settings, v: Any) -> str:
    v = contacts.clean_text(v, "name", max_length=200)
    if not v:
        raise Invalid.field("name", "is required")
    return v


def _subject(_s: Session, _c: Settings, v: Any) -> str:
    v = contacts.clean_text(v, "subject", max_length=500)
    if not v:
        raise Invalid.field("subject", "is required")
    _staff_source(v, "subject", html=False)
    return v


def _list(_s: Session, _c: Settings, v: Any) -> str:
    allowed = [k.value for k in ListKey]
    if v not in allowed:
        raise Invalid.field("list", f"unknown list {v!r}; expected one of {', '.join(allowed)}")
    return str(v)


def _segment(session: Session, _c: Settings, v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise Invalid.field("segment_id", "must be a segment id (a whole number) or null")
    if session.get(Segment, v) is None:
        raise Invalid.field("segment_id", f"no segment {v}")
    return v


def _template(_s: Session, settings: Settings, v: Any) -> str:
    if not isinstance(v, str) or not _KEY.match(v):
        raise Invalid.field("template", "must be a template key such as \"campaign\"")
    if not _template_exists(settings, v):
        raise Invalid.field("template", f"no template {v!r}")
    return v


def _content_ids(_s: Session, _c: Settings, v: Any) -> list[int]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise Invalid.field("content_ids", "must be a list of content item ids")
    return list(dict.fromkeys(v))


def _translation(lang: Any, version: Any) -> dict[str, str | None]:
    if lang not in LANGUAGES or not isinstance(version, dict) or set(version) - {"subject", "body_html", "body_text"}:
        raise Invalid.field("translations", f"{lang!r}: expected en or es with subject, body_html, body_text")
    return {
        "subject": _staff_source(version.get("subject"), "translations", html=False, max_length=500),
        "body_html": _staff_source(version.get("body_html"), "translations", html=True),
        "body_text": _staff_source(version.get("body_text"), "translations", html=False),
    }


def _translations(_s: Session, _c: Settings, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise Invalid.field("translations", "must map a language to {subject, body_html, body_text}")
    return {lang: _translation(lang, version) for lang, version in v.items()}


def _flag(name: str) -> Parser:
    def parse(_s: Session, _c: Settings, v: Any) -> bool:
        if not isinstance(v, bool):
            raise Invalid.field(name, "must be true or false")
        return v
    return parse


def _body(name: str, *, html: bool) -> Parser:
    return lambda _s, _c, v: _staff_source(v, name, html=html)


PARSERS: dict[str, Parser] = {
    "name": _name, "subject": _subject, "list": _list, "segment_id": _segment, "template": _template,
    "body_html": _body("body_html", html=True), "body_text": _body("body_text", html=False),
    "content_ids": _content_ids, "translations": _translations,
    "track_opens": _flag("track_opens"), "track_clicks": _flag("track_clicks"),
}
REQUIRED = ("name", "subject")


def parse_fields(session: Session, settings: Settings, data: Any, *, partial: bool) -> dict[str, Any]:
    """The campaign fields in `data`, each checked by its parser; every bad field named in one 400."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors = {name: f"unknown field; expected any of {', '.join(FIELDS)}" for name in sorted(set(data) - set(FIELDS))}
    out: dict[str, Any] = {}
    for name, parse in PARSERS.items():
        if name not in data:
            continue
        try:
            out[name] = parse(session, settings, data[name])
        except Invalid as exc:
            errors.update(exc.fields or {name: exc.message})
    if not partial:
        errors.update({name: "is required" for name in REQUIRED if name not in data and name not in errors})
    if errors:
        summary = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise Invalid(f"invalid campaign: {summary}", fields=errors)
    return out


def create(session: Session, settings: Settings, data: Any, actor: str | None) -> Campaign:
    fields = parse_fields(session, settings, data, partial=False)
    now = utcnow()
    campaign = Campaign(kind=CampaignKind.campaign, created_by=actor, created_at=now, updated_at=now,
                        **{"list": ListKey.newsletter.value, "template": "campaign", **fields})
    session.add(campaign)
    session.flush()
    check_renders(session, settings, campaign)  # render-check on save: a broken template is a 400 now
    return campaign


def change(session: Session, settings: Settings, campaign_id: int, data: Any) -> Campaign:
    campaign = get(session, campaign_id)
    fields = parse_fields(session, settings, data, partial=True)
    if campaign.state not in EDITABLE_IN:
        raise Conflict(f"a campaign can be changed only while {', '.join(EDITABLE_IN)}; this one is "
                       f"{campaign.state}")
    for key, value in fields.items():
        setattr(campaign, key, value)
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    check_renders(session, settings, campaign)
    return campaign


# --- the lifecycle ----------------------------------------------------------------------------


def _parse_when(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise Invalid.field("send_at", "must be an ISO 8601 date-time, e.g. 2026-03-01T09:00:00Z")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid.field("send_at", "must be an ISO 8601 date-time, e.g. 2026-03-01T09:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when < utcnow() - dt.timedelta(minutes=1):
        raise Invalid.field("send_at", "is in the past")
    return when


def schedule(session: Session, campaign_id: int, data: Any) -> Campaign:
    if not isinstance(data, dict) or "send_at" not in data:
        raise Invalid.field("send_at", "is required")
    when = _parse_when(data["send_at"])
    campaign = get(session, campaign_id)
    allowed = (S.draft, S.scheduled)
    if not move(session, campaign_id, allowed, S.scheduled, send_at=when):
        raise illegal(campaign, "schedule", allowed)
    return refresh(session, campaign_id)


def launch(session: Session, settings: Settings, campaign_id: int) -> tuple[Campaign, bool]:
    """(campaign, whether this call started it). Launching a running or finished one changes nothing."""
    campaign = get(session, campaign_id)
    if campaign.state in (S.draft, S.scheduled):
        check_renders(session, settings, campaign)
    started = start(session, campaign_id)
    campaign = refresh(session, campaign_id)
    if not started and campaign.state == S.cancelled:
        raise illegal(campaign, "launch", (S.draft, S.scheduled))
    if started:
        wake(session, campaign)
    return campaign, started


def pause(session: Session, campaign_id: int) -> Campaign:
    campaign = get(session, campaign_id)
    if not move(session, campaign_id, (S.sending,), S.paused) and campaign.state != S.paused:
        raise illegal(campaign, "pause", (S.sending,))
    return refresh(session, campaign_id)


def resume(session: Session, campaign_id: int) -> tuple[Campaign, bool]:
    campaign = get(session, campaign_id)
    resumed = move(session, campaign_id, (S.paused,), S.sending, paused_reason=None)
    if not resumed and campaign.state != S.sending:
        raise illegal(campaign, "resume", (S.paused,))
    campaign = refresh(session, campaign_id)
    if resumed:
        wake(session, campaign)
    return campaign, resumed


def cancel(session: Session, campaign_id: int) -> Campaign:
    campaign = get(session, campaign_id)
    allowed = (S.draft, S.scheduled, S.sending, S.paused)
    if not move(session, campaign_id, allowed, S.cancelled, finished_at=utcnow()) and campaign.state != S.cancelled:
        raise illegal(campaign, "cancel", allowed)
    # Rows still waiting never go; rows a sender holds are released as cancelled by that sender.
    session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id,
                                           Delivery.status == DeliveryStatus.queued)
                    .values(status=DeliveryStatus.cancelled))
    return refresh(session, campaign_id)


def wake(session: Session, campaign: Campaign) -> None:
    """On commit: plan a campaign not yet planned, or wake its senders."""
    assert campaign.id is not None
    if campaign.planned_at is None:
        publish(session, pipeline.PLAN_TASK, campaign.id)
    else:
        kick(session, campaign.id)


# --- stats ------------------------------------------------------------------------------------


def stats(session: Session, campaign_id: int) -> dict[str, Any]:
    campaign = get(session, campaign_id)
    d = Delivery

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = session.execute(select(
        func.count(d.id), n(d.status.in_(pipeline.PENDING)), n(d.status == DeliveryStatus.sent),
        n(d.status == DeliveryStatus.failed), n(d.status == DeliveryStatus.bounced),
        n(d.status == DeliveryStatus.skipped), n(d.status == DeliveryStatus.cancelled),
        n(d.opened_at.is_not(None)), n(d.clicked_at.is_not(None)),
    ).where(d.campaign_id == campaign_id)).one()
    # Unsubscribed: people this campaign reached who left its list after it went.
    unsubscribed = session.scalar(
        select(func.count(d.id)).join(Subscription, and_(Subscription.contact_id == d.contact_id,
                                                         Subscription.list == campaign.list))
        .where(d.campaign_id == campaign_id, d.sent_at.is_not(None),
               Subscription.state == SubscriptionState.unsubscribed, Subscription.unsubscribed_at >= d.sent_at)
    ) or 0
    recipients, queued, sent, failed, bounced, skipped, cancelled, opened, clicked = (int(v) for v in row)
    rates = autopause.rates(session, campaign_id)
    return {"state": campaign.state, "paused_reason": campaign.paused_reason,
            "complained": rates["complaints"], "failure_rate": rates["failure_rate"],
            "complaint_rate": rates["complaint_rate"], "recipients": recipients, "queued": queued, "sent": sent, "failed": failed, "bounced": bounced,
            "unsubscribed": int(unsubscribed), "opened": opened, "clicked": clicked, "skipped": skipped,
            "cancelled": cancelled}
