"""The beat's safety net: expired leases, lost plan or send tasks, scheduled campaigns that are due,
campaigns with nothing left (-> `sent`). The broker is a wake-up call only: a lost or duplicated
task changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, or_, select, update

from crm.campaigns import lifecycle
from crm.campaigns.lifecycle import kick
from crm.campaigns.models import Campaign, CampaignState, Delivery, DeliveryStatus
from crm.campaigns.pipeline import PLAN_TASK, finish_if_done, has_claimable
from crm.config import Settings
from crm.db import session_scope, utcnow
from crm.queue import publish


@dataclass
class SweepSummary:
    started: list[int] = field(default_factory=list)
    replanned: list[int] = field(default_factory=list)
    kicked: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    reclaimed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sweep(settings: Settings, *, plan_grace: dt.timedelta = dt.timedelta(seconds=20)) -> SweepSummary:
    out = SweepSummary()
    now = utcnow()
    with session_scope(settings) as session:
        due = list(session.scalars(select(Campaign.id).where(
            Campaign.state == CampaignState.scheduled, Campaign.send_at <= now)))
    for cid in due:
        with session_scope(settings) as session:
            if lifecycle.start(session, cid, from_states=(CampaignState.scheduled,)):
                out.started.append(cid)
                publish(session, PLAN_TASK, cid)
    with session_scope(settings) as session:
        # Leases of dead workers: back to the queue (claims take them too; this keeps stats honest).
        out.reclaimed = session.execute(
            update(Delivery).where(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now)
            .values(status=DeliveryStatus.queued, lease_until=None)).rowcount or 0
        # A cancelled campaign's rows that a dead worker held never go either.
        session.execute(update(Delivery).where(
            Delivery.status == DeliveryStatus.queued,
            Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state == CampaignState.cancelled)))
            .values(status=DeliveryStatus.cancelled))
        unplanned = list(session.scalars(select(Campaign.id).where(
            Campaign.state.in_([CampaignState.sending, CampaignState.paused]), Campaign.planned_at.is_(None),
            or_(Campaign.started_at.is_(None), Campaign.started_at < now - plan_grace))))
        sending = list(session.scalars(select(Campaign.id).where(
            Campaign.state == CampaignState.sending, Campaign.planned_at.is_not(None))))
        for cid in sending:
            if finish_if_done(session, cid):
                out.finished.append(cid)
                continue
            busy = session.scalar(select(exists().where(
                Delivery.campaign_id == cid, Delivery.status == DeliveryStatus.sending, Delivery.lease_until >= now)))
            if not busy and has_claimable(session, cid):
                out.kicked.append(cid)
                kick(session, cid, 1)
        for cid in unplanned:
            out.replanned.append(cid)
            publish(session, PLAN_TASK, cid)
    return out


