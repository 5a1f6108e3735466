"""The bounce webhook: a relay's bounce and complaint reports turned into suppression.

Complaints mark the delivery they are about (`complained_at`) and may pause the campaign or
warn admins (crm.campaigns.autopause, SPEC 14); hard bounces may pause it on its failure rate.
Hard bounces and complaints suppress at once (reasons `bounced`, `complained`) and set the
contact's status; soft bounces add to a score that suppresses at CRM_SOFT_BOUNCE_THRESHOLD
(settings.soft_bounce_threshold). An address we do not know is accepted and ignored, so the
answer never reveals who is on file.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.campaigns import autopause
from crm.campaigns.autopause import WINDOW
from crm.campaigns.models import Delivery, DeliveryStatus
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.bounces import bounce
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.errors import Invalid

MAX_EVENTS = 1000


def authentic(settings: Settings, presented: str | None) -> bool:
    expected = settings.resolved_secret("webhook_secret")
    return bool(presented) and hmac.compare_digest(str(presented).encode(), expected.encode())


def parse_events(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise Invalid.field("events", "must be a list of {type, email, bounce_type?, message_id?}")
    events = data["events"]
    if len(events) > MAX_EVENTS:
        raise Invalid.field("events", f"at most {MAX_EVENTS} per call")
    errors: dict[str, str] = {}
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            errors[f"events[{i}]"] = "must be an object"
            continue
        if ev.get("type") not in ("bounce", "complaint"):
            errors[f"events[{i}].type"] = "must be bounce or complaint"
        if not isinstance(ev.get("email"), str) or not ev["email"].strip():
            errors[f"events[{i}].email"] = "is required"
        if ev.get("bounce_type") not in (None, "hard", "soft"):
            errors[f"events[{i}].bounce_type"] = "must be hard or soft"
        if ev.get("message_id") is not None and not isinstance(ev["message_id"], str):
            errors[f"events[{i}].message_id"] = "must be text"
    if errors:
        raise Invalid("invalid events: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return events


def _norm_mid(mid: str) -> str:
    mid = mid.strip()
    return mid if mid.startswith("<") else f"<{mid}>"


def _record_on_delivery(session: Session, ev: dict[str, Any], contact_id: int | None, now: dt.datetime) -> list[int]:
    """Mark the delivery the report is about; returns its campaign (to check its rates), if any.

    A complaint marks `complained_at` and leaves the row `sent` (it was delivered); without a
    Message-ID it is put on the person's latest campaign message of the last 30 days. A bounce
    with a Message-ID marks the row `bounced`.
    """
    mid = _norm_mid(ev["message_id"]) if ev.get("message_id") else None
    if ev["type"] == "complaint":
        if mid is not None:
            target = select(Delivery.id).where(Delivery.message_id == mid)
        elif contact_id is not None:
            target = (select(Delivery.id).where(Delivery.contact_id == contact_id, Delivery.sent_at >= now - WINDOW)
                      .order_by(Delivery.sent_at.desc()).limit(1))
        else:
            return []
        rows = session.execute(update(Delivery).where(Delivery.id.in_(target.scalar_subquery()),
                                                      Delivery.status == DeliveryStatus.sent,
                                                      Delivery.complained_at.is_(None))
                               .values(complained_at=now).returning(Delivery.campaign_id)).all()
        return [r[0] for r in rows]
    if mid is None:
        return []
    rows = session.execute(update(Delivery).where(Delivery.message_id == mid, Delivery.status == DeliveryStatus.sent)
                           .values(status=DeliveryStatus.bounced, bounced_at=now,
                                   error=f"bounce ({ev.get('bounce_type') or 'hard'}) reported by webhook")
                           .returning(Delivery.campaign_id)).all()
    return [r[0] for r in rows]


def apply(session: Session, settings: Settings, data: Any) -> dict[str, int]:
    events = parse_events(data)
    counts = {"suppressed": 0, "soft": 0, "ignored": 0}
    now = utcnow()
    bounced: set[int] = set()
    complained: set[int] = set()
    for ev in events:
        try:
            key = contacts.normalize_email(ev["email"]).key
        except Invalid:
            counts["ignored"] += 1
            continue
        contact = session.scalars(select(Contact).where(Contact.email_key == key)).first()
        hard = ev["type"] == "complaint" or ev.get("bounce_type", "hard") != "soft"
        touched = _record_on_delivery(session, ev, contact.id if contact else None, now)
        (complained if ev["type"] == "complaint" else bounced).update(touched)
        if contact is None or contact.id is None:
            # Unknown address: still never mail it from a campaign (hash only, nothing else kept).
            if hard:
                contacts.suppress(session, key, "complained" if ev["type"] == "complaint" else "bounced")
            counts["ignored"] += 1
            continue
        if hard:
            bounce(session, contact.id, "complained" if ev["type"] == "complaint" else "bounced")
            counts["suppressed"] += 1
            continue
        session.execute(update(Contact).where(Contact.id == contact.id)
                        .values(soft_bounces=Contact.soft_bounces + 1, updated_at=now))
        score = session.scalar(select(Contact.soft_bounces).where(Contact.id == contact.id)) or 0
        counts["soft"] += 1
        if score >= settings.soft_bounce_threshold:
            bounce(session, contact.id, "bounced")
            counts["suppressed"] += 1
    # SPEC 14: the reports that arrived may push a campaign (or the 30-day window) over a limit.
    session.commit()
    for campaign_id in sorted(bounced):
        autopause.check_failures(session, settings, campaign_id)
    if complained:
        autopause.check_complaints(session, settings, complained)
    return {"accepted": len(events), **counts}
