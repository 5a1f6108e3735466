"""Claiming deliveries: take a batch under a lease, give rows back, put rows off, finish a campaign.

PostgreSQL claims with FOR UPDATE SKIP LOCKED; SQLite runs the same conditional UPDATE, serialised
by BEGIN IMMEDIATE. A worker killed mid-batch leaves rows `sending` whose lease expires; they go
back to the queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select, update
from sqlmodel import Session

from crm.backoff import backoff as retry_delay
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.db import UTCDateTime, is_postgres, utcnow
from crm.events import service as events

PENDING = (DeliveryStatus.queued, DeliveryStatus.sending)


def backoff(attempts: int) -> dt.timedelta:
    """2 s doubling up to an hour (crm.backoff: full jitter); kept in next_attempt_at, not the broker."""
    return retry_delay(attempts, base=2.0)


def _claimable(campaign_id: int, now: dt.datetime) -> Any:
    return and_(
        Delivery.campaign_id == campaign_id,
        or_(
            and_(Delivery.status == DeliveryStatus.queued,
                 or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)),
            and_(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now),
        ),
    )


def claim(session: Session, campaign_id: int, n: int, lease: dt.timedelta) -> tuple[list[int], dt.datetime]:
    """Take up to n deliveries for this sender, only while the campaign is `sending`."""
    now = utcnow()
    lease_until = now + lease
    pick: Any = select(Delivery.id).where(_claimable(campaign_id, now)).order_by(Delivery.id).limit(n)
    if is_postgres(session):
        # Locked and read first: as a subquery of the UPDATE, PostgreSQL may run a SKIP LOCKED pick more
        # than once (a semi-join re-scan) and so claim more than n rows, a whole campaign at once.
        pick = list(session.scalars(pick.with_for_update(skip_locked=True)))
        if not pick:
            return [], lease_until
    else:
        pick = pick.scalar_subquery()
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(pick), _claimable(campaign_id, now),
               exists().where(Campaign.id == campaign_id, Campaign.state == CampaignState.sending))
        .values(status=DeliveryStatus.sending, lease_until=lease_until, attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
    )
    ids = sorted(session.scalars(stmt))
    return ids, lease_until


def release(session: Session, ids: list[int], campaign_state: str) -> None:
    """Give back claimed rows not yet sent: to the queue on pause, to `cancelled` on cancel."""
    if not ids:
        return
    status = DeliveryStatus.cancelled if campaign_state == CampaignState.cancelled else DeliveryStatus.queued
    session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.sending)
                    .values(status=status, lease_until=None))


def hand_back(session: Session, ids: list[int]) -> None:
    """The relay is refusing: rows go back to the queue after a short backoff."""
    session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.sending)
                    .values(status=DeliveryStatus.queued, lease_until=None, next_attempt_at=utcnow() + backoff(1)))
    session.commit()


def put_off(session: Session, due: Mapping[int, dt.datetime]) -> None:
    """Claimed rows whose domain has no slot soon: back to the queue, due when their slot would be.

    They were not attempted, so the claim's attempt is taken back; one UPDATE for the whole lot.
    """
    if not due:
        return
    session.execute(update(Delivery).where(Delivery.id.in_(list(due)), Delivery.status == DeliveryStatus.sending)
                    .values(status=DeliveryStatus.queued, lease_until=None, attempts=Delivery.attempts - 1,
                            next_attempt_at=case({i: literal(t, UTCDateTime()) for i, t in due.items()},
                                                 value=Delivery.id)))
    session.commit()


def has_claimable(session: Session, campaign_id: int) -> bool:
    return session.scalar(select(exists().where(_claimable(campaign_id, utcnow())))) or False


def next_due(session: Session, campaign_id: int) -> dt.datetime | None:
    """When the earliest queued row that is not due yet will be (rows put off or waiting for a retry)."""
    return session.scalar(select(func.min(Delivery.next_attempt_at)).where(
        Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.queued))


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """`sent` only once planning finished and no delivery is queued or sending.

    A journey step's campaign is never done: new people reach the step every day.
    """
    now = utcnow()
    result = session.execute(
        update(Campaign).where(
            Campaign.id == campaign_id, Campaign.state == CampaignState.sending, Campaign.planned_at.is_not(None),
            Campaign.kind != CampaignKind.journey,
            ~exists().where(Delivery.campaign_id == campaign_id, Delivery.status.in_(PENDING)),
        ).values(state=CampaignState.sent, finished_at=now, updated_at=now)
    )
    if result.rowcount == 1:
        events.record(session, "campaign.sent", campaign_id=campaign_id)
    return result.rowcount == 1
