"""The bounce webhook: a relay's bounce and complaint reports turned into suppression.

Hard bounces and complaints suppress at once (reasons `bounced`, `complained`) and set the
contact's status; soft bounces add to a score that suppresses at CRM_SOFT_BOUNCE_THRESHOLD
(settings.soft_bounce_threshold). An address we do not know is accepted and ignored, so the
answer never reveals who is on file.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

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


def apply(session: Session, settings: Settings, data: Any) -> dict[str, int]:
    events = parse_events(data)
    counts = {"suppressed": 0, "soft": 0, "ignored": 0}
    now = utcnow()
    for ev in events:
        try:
            key = contacts.normalize_email(ev["email"]).key
        except Invalid:
            counts["ignored"] += 1
            continue
        contact = session.scalars(select(Contact).where(Contact.email_key == key)).first()
        hard = ev["type"] == "complaint" or ev.get("bounce_type", "hard") != "soft"
        if ev.get("message_id"):
            session.execute(update(Delivery).where(Delivery.message_id == _norm_mid(ev["message_id"]),
                                                   Delivery.status == DeliveryStatus.sent)
                            .values(status=DeliveryStatus.bounced, bounced_at=now,
                                    error=f"{ev['type']} ({ev.get('bounce_type') or 'hard'}) reported by webhook"))
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
    return {"accepted": len(events), **counts}
