"""Planning a launched campaign: one INSERT ... SELECT of every eligible recipient, never loaded into Python.

A second run (a redelivered task, the sweep, two at once) adds nobody twice: the delivery rows are
unique per (campaign, contact) and `planned_at` is set in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, select, true
from sqlmodel import Session

from crm.campaigns.lifecycle import kick
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.config import Settings
from crm.db import is_postgres, session_scope, utcnow
from crm.segments.models import Segment


def segment_rules(session: Session, segment_id: int | None) -> dict[str, Any] | None:
    if segment_id is None:
        return None
    seg = session.get(Segment, segment_id)
    return getattr(seg, "rules", None) if seg is not None else None


def plan_deliveries(session: Session, campaign: Campaign) -> int:
    """INSERT ... SELECT the audience; a second run (or two at once) adds nobody twice."""
    from crm.segments.service import audience

    assert campaign.id is not None
    ids = audience(segment_rules(session, campaign.segment_id), campaign.list).subquery()
    # The WHERE is for SQLite, whose parser otherwise reads ON CONFLICT as a join constraint.
    src = select(literal(campaign.id), ids.c.id, literal(DeliveryStatus.queued.value), literal(0)).where(true())
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(Delivery.__table__).from_select(  # type: ignore[attr-defined]
        ["campaign_id", "contact_id", "status", "attempts"], src
    ).on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    before = _count(session, campaign.id)
    session.execute(stmt)
    # rowcount of INSERT ... SELECT is not reported by every driver: count instead.
    return _count(session, campaign.id) - before


def _count(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)) or 0


def plan(settings: Settings, campaign_id: int) -> int:
    """Plan a launched campaign once; safe to run again (a redelivered task, the sweep)."""
    with session_scope(settings) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.planned_at is not None:
            return 0
        if campaign.state not in (CampaignState.sending, CampaignState.paused):
            return 0
        if is_postgres(session):
            # Two plans at once would both insert; the lock makes the second wait and then see planned_at.
            session.execute(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())
            session.refresh(campaign)
            if campaign.planned_at is not None:
                return 0
        added = plan_deliveries(session, campaign) if campaign.kind == CampaignKind.campaign else 0
        campaign.planned_at = utcnow()
        session.add(campaign)
        if campaign.state == CampaignState.sending:
            kick(session, campaign_id)
    return added




