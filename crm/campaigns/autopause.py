"""Campaigns that pause themselves (SPEC 14): too many permanent failures, or too many complaints.

- Failures: permanent failures (`failed` and `bounced`, hard bounces included) over
  CRM_PAUSE_ON_FAILURE_RATE percent of the attempts, once there were MIN_ATTEMPTS attempts.
  Checked by the sender after every batch and by the bounce webhook.
- Complaints, per campaign (complaints / delivered, once MIN_ATTEMPTS were delivered) and over
  the last 30 days of campaign mail: over 0.1 % warns admins, over 0.3 % pauses (the campaign;
  for the 30-day window every campaign that is sending). Checked when complaints arrive
  (the webhook) and when a sender starts on a campaign.

A pause writes `paused_reason` (shown in the campaign and its stats) and emails every admin
once per pause; a warning emails them once per campaign, or once a day for the 30-day window.
A resumed campaign whose rate is still over pauses again after its next batch: fix the cause
(a stale list, a broken template) first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.campaigns import lifecycle
from crm.campaigns.models import Campaign, CampaignState, Delivery, DeliveryStatus
from crm.config import Settings
from crm.db import utcnow
from crm.outbox import service as outbox
from crm.staff.models import Staff, StaffRole

log = logging.getLogger(__name__)

MIN_ATTEMPTS = 100
COMPLAINT_WARN = 0.1  # percent
COMPLAINT_PAUSE = 0.3  # percent
WINDOW = dt.timedelta(days=30)
ATTEMPTED = (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.bounced)
PERMANENT = (DeliveryStatus.failed, DeliveryStatus.bounced)


def _n(cond: object) -> object:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)  # type: ignore[arg-type]


def rates(session: Session, campaign_id: int) -> dict[str, float | int]:
    """One GROUP BY-free pass over the campaign's rows: attempts, failures, delivered, complaints."""
    d = Delivery
    attempts, failures, delivered, complaints = (int(v) for v in session.execute(select(
        _n(d.status.in_(ATTEMPTED)), _n(d.status.in_(PERMANENT)), _n(d.status == DeliveryStatus.sent),
        _n(d.complained_at.is_not(None)),
    ).where(d.campaign_id == campaign_id)).one())
    return {"attempts": attempts, "failures": failures, "delivered": delivered, "complaints": complaints,
            "failure_rate": _percent(failures, attempts), "complaint_rate": _percent(complaints, delivered)}


def window_rates(session: Session, now: dt.datetime | None = None) -> dict[str, float | int]:
    """Campaign mail delivered and complained about over the last 30 days."""
    since = (now or utcnow()) - WINDOW
    delivered = session.scalar(select(func.count()).where(Delivery.sent_at >= since)) or 0
    complaints = session.scalar(select(func.count()).where(Delivery.complained_at >= since)) or 0
    return {"delivered": delivered, "complaints": complaints, "complaint_rate": _percent(complaints, delivered)}


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 3) if whole else 0.0


def check_failures(session: Session, settings: Settings, campaign_id: int) -> bool:
    """Pause a sending campaign whose permanent failures passed the limit; True if it paused now."""
    r = rates(session, campaign_id)
    session.commit()
    if r["attempts"] < MIN_ATTEMPTS or r["failure_rate"] <= settings.pause_on_failure_rate:
        return False
    reason = (f"{r['failure_rate']:g} % of {r['attempts']} messages failed permanently "
              f"({r['failures']} failed or bounced), over the {settings.pause_on_failure_rate:g} % limit "
              "(CRM_PAUSE_ON_FAILURE_RATE)")
    return pause(session, settings, campaign_id, reason)


def check_complaints(session: Session, settings: Settings, campaign_ids: Iterable[int]) -> list[int]:
    """After complaints arrived (or before sending): warn or pause; returns the campaigns paused now."""
    paused: list[int] = []
    for campaign_id in sorted(set(campaign_ids)):
        r = rates(session, campaign_id)
        if r["delivered"] < MIN_ATTEMPTS or r["complaint_rate"] <= COMPLAINT_WARN:
            continue
        what = (f"{r['complaint_rate']:g} % of the {r['delivered']} people who received this campaign "
                f"reported it as spam ({r['complaints']} complaints)")
        if r["complaint_rate"] > COMPLAINT_PAUSE:
            if pause(session, settings, campaign_id, f"{what}, over the {COMPLAINT_PAUSE:g} % limit"):
                paused.append(campaign_id)
        else:
            warn(session, f"c{campaign_id}", f"{what}, over the {COMPLAINT_WARN:g} % warning level", campaign_id)
    w = window_rates(session)
    if w["delivered"] >= MIN_ATTEMPTS and w["complaint_rate"] > COMPLAINT_WARN:
        what = (f"{w['complaint_rate']:g} % of the {w['delivered']} campaign messages of the last 30 days were "
                f"reported as spam ({w['complaints']} complaints)")
        if w["complaint_rate"] > COMPLAINT_PAUSE:
            sending = session.scalars(select(Campaign.id).where(Campaign.state == CampaignState.sending)).all()
            paused += [c for c in sending if pause(session, settings, c, f"{what}, over the {COMPLAINT_PAUSE:g} % "
                                                                         "limit: all sending is paused")]
        else:
            warn(session, f"30d:{utcnow().date().isoformat()}", f"{what}, over the {COMPLAINT_WARN:g} % warning level")
    return paused


def pause(session: Session, settings: Settings, campaign_id: int, reason: str) -> bool:
    """Pause a sending campaign itself, say why, and email the admins; False if it was not sending."""
    reason = reason[:500]
    if not lifecycle.move(session, campaign_id, (CampaignState.sending,), CampaignState.paused, paused_reason=reason):
        return False
    campaign = session.get(Campaign, campaign_id)
    log.warning("campaign %s paused itself: %s", campaign_id, reason)
    _tell_admins(session, f"paused:{campaign_id}:{utcnow().isoformat()}",
                 {"paused": True, "reason": reason, "campaign": _campaign(campaign)})
    session.commit()
    return True


def warn(session: Session, key: str, reason: str, campaign_id: int | None = None) -> None:
    campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
    _tell_admins(session, f"warn:{key}", {"paused": False, "reason": reason, "campaign": _campaign(campaign)})
    session.commit()


def _campaign(campaign: Campaign | None) -> dict[str, object] | None:
    return {"id": campaign.id, "name": campaign.name} if campaign is not None else None


def _tell_admins(session: Session, key: str, context: dict[str, object]) -> None:
    for email in session.scalars(select(Staff.email).where(Staff.role == StaffRole.admin, Staff.active.is_(True))):
        outbox.queue(session, "deliverability-alert", email, context, dedupe_key=f"deliverability:{key}:{email}")
