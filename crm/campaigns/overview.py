"""What the staff console shows of campaigns: the list's progress, the audience, the rate, previews.

Read-only helpers over the delivery table and the renderer the pipeline itself uses, so a preview
is the email a person gets (same template, links and language choice) and a count is the audience
planning would insert. Every figure is one grouped SQL query, never rows loaded into Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.campaigns import pipeline
from crm.campaigns.compose import Person, Tracker
from crm.campaigns.lifecycle import get
from crm.campaigns.models import Campaign, CampaignKind, Delivery
from crm.campaigns.planning import segment_rules
from crm.campaigns.proofs import sample_person
from crm.contacts.models import Contact, ContactStatus
from crm.db import keyset_page, utcnow
from crm.errors import Invalid, NotFound
from crm.mail import LANGUAGES
from crm.mail.sandbox import bounded_render
from crm.staff.service import audit

RATE_WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Progress:
    total: int
    done: int  # no longer waiting: sent, failed, bounced, skipped or cancelled

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def list_page(session: Session, after_id: int | None, limit: int) -> tuple[list[Campaign], bool, dict[int, Progress]]:
    """Staff campaigns (not digests or invitations), newest first, with each one's progress."""
    rows, more = keyset_page(session, select(Campaign).where(Campaign.kind == CampaignKind.campaign),
                             Campaign.id, after_id, limit)
    ids = [c.id for c in rows]
    progress: dict[int, Progress] = {}
    if ids:
        pending = func.coalesce(func.sum(case((Delivery.status.in_(pipeline.PENDING), 1), else_=0)), 0)
        for cid, total, waiting in session.execute(
                select(Delivery.campaign_id, func.count(Delivery.id), pending)
                .where(Delivery.campaign_id.in_(ids)).group_by(Delivery.campaign_id)):
            progress[cid] = Progress(total=int(total), done=int(total) - int(waiting))
    return rows, more, progress


def rate_per_minute(session: Session, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Messages this campaign sent in the last minute."""
    since = (now or utcnow()) - RATE_WINDOW
    return int(session.scalar(select(func.count(Delivery.id)).where(
        Delivery.campaign_id == campaign_id, Delivery.sent_at >= since)) or 0)


def audience_size(session: Session, campaign: Campaign) -> int:
    """How many people a launch now would mail: the segment, through the list's mailing gate."""
    from crm.segments.service import count

    return count(session, segment_rules(session, campaign.segment_id), campaign.list)


@dataclass(frozen=True)
class PreviewVersion:
    language: str
    translated: bool  # False: this language's readers get the English version
    subject: str = ""
    html: str = ""
    text: str = ""
    error: str | None = None


def _person(session: Session, contact_id: int | None, language: str) -> Person:
    if contact_id is None:
        return sample_person(language=language)
    contact = session.get(Contact, contact_id) if 0 < contact_id < 2**31 else None
    if contact is None or contact.status == ContactStatus.erased:
        raise NotFound(f"no contact {contact_id}", fields={"contact_id": f"no contact {contact_id}"})
    return Person(contact_id=contact_id, delivery_id=0, email=contact.email or "", first_name=contact.first_name,
                  last_name=contact.last_name, language=language, role=contact.role, items=[])


def preview(session: Session, settings: Any, campaign_id: int, contact_id: int | None,
            staff_email: str) -> list[PreviewVersion]:
    """The campaign in every language as `contact_id` (their name and real links) or the sample person.

    A named person's rendered email is a look at their data: audited, like the API's previews.
    """
    campaign = get(session, campaign_id)
    sender = pipeline.CampaignSender(settings, session, campaign)
    # No open pixel or click redirects: a staff member looking must never count as the person engaging
    # (the tracking links would set their last_engaged_at, which segments' `engaged` reads).
    sender.tracker = Tracker(sender.links, opens=False, clicks=False)
    out = []
    for lang in LANGUAGES:
        person = _person(session, contact_id, lang)
        try:
            rendered = bounded_render(lambda p=person: sender.renderer(p.language).render(p), "template")
            out.append(PreviewVersion(lang, lang in sender.versions, rendered.subject, rendered.html, rendered.text))
        except Invalid as exc:
            out.append(PreviewVersion(lang, lang in sender.versions, error=(exc.fields or {}).get("template",
                                                                                                 exc.message)))
    if contact_id is not None:
        audit(session, staff_email, "campaign.preview", f"contact:{contact_id}", rows=1,
              detail={"campaign_id": campaign_id})
    return out
