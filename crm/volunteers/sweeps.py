"""The beat's volunteer sweeps: lapsed offers pass on, reminders go out, expiry warnings go once.

Each works from rows alone (an offer's expiry, a reminder's sent-at, a warning's warned-at), so a
worker that died mid-way leaves nothing the next run does not pick up, and a second run sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts.models import Contact, ContactStatus
from crm.db import utcnow
from crm.links import person_links
from crm.outbox import service as outbox
from crm.volunteers import qualifications, signups
from crm.volunteers.models import QualificationType, VolunteerQualification
from crm.volunteers.service import person


def shifts_sweep(session: Session, settings: Settings, now: dt.datetime | None = None) -> tuple[dict[str, Any], list[int]]:
    now = now or utcnow()
    offered, more_offers = signups.lapse_offers(session, settings, now)
    reminded, more_reminders = signups.reminder_sweep(session, settings, now)
    return ({"offers": len(offered), "reminders": len(reminded), "has_more": more_offers or more_reminders},
            offered + reminded)


def qualification_warnings(session: Session, settings: Settings, today: dt.date | None = None
                           ) -> tuple[dict[str, Any], list[int]]:
    """Email each volunteer whose qualification expires within CRM_QUALIFICATION_WARN_DAYS, once."""
    today = today or signups.local_today(settings)
    labels = {k: v for k, v in session.execute(select(QualificationType.key, QualificationType.label))}
    ids: list[int] = []
    for q, vol in qualifications.expiring(session, settings, today):
        if q.warned_at is not None or q.id is None or not qualifications.claim_warning(session, q.id):
            continue
        contact = session.get(Contact, vol.contact_id)
        if contact is None or contact.email is None or contact.status in (ContactStatus.erased, ContactStatus.bounced):
            continue
        ids += _warn(session, settings, contact, q, labels.get(q.type_key, q.type_key))
    return {"warned": len(ids)}, ids


def _warn(session: Session, settings: Settings, contact: Contact, q: VolunteerQualification, label: str) -> list[int]:
    assert contact.id is not None and contact.email is not None and q.expires_on is not None
    ctx = {"contact": person(contact),
           "links": {**person_links(settings, contact.id), "volunteer": signups.portal_url(settings, contact.id)},
           "qualification": {"type": q.type_key, "label": label, "expires_on": q.expires_on.isoformat()}}
    mid = outbox.queue(session, "qualification-expiring", contact.email, ctx, contact_id=contact.id,
                       language=contact.language, dedupe_key=f"qualification-expiring:{q.id}")
    return [mid] if mid else []



