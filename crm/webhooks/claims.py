"""Which deliveries may be tried now, and taking a batch of them for one endpoint in one statement.

Order per (endpoint, contact) is SPEC 12's rule: a delivery is due only while no earlier event of
the same contact is still owed to the same endpoint (pending or in flight). The rule is part of
the claiming UPDATE, so two dispatchers (two processes, or two threads) can never send a contact's
later event first; on PostgreSQL `SKIP LOCKED` lets them share an endpoint's backlog without
waiting on each other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.db import is_postgres
from crm.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint


def _earlier_owed() -> Any:
    earlier = aliased(WebhookDelivery)
    return exists().where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                          earlier.contact_id == WebhookDelivery.contact_id,
                          earlier.event_id < WebhookDelivery.event_id,
                          earlier.state.in_([DeliveryState.pending, DeliveryState.delivering]))


def _due(now: dt.datetime) -> Any:
    return (WebhookDelivery.state == DeliveryState.pending) & (WebhookDelivery.next_attempt_at <= now)


def endpoints_with_work(session: Session, now: dt.datetime) -> list[int]:
    """Enabled endpoints with at least one delivery that may be tried now (the first one found will do)."""
    has_due = exists().where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, _due(now), ~_earlier_owed())
    return list(session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True), has_due)
                                .order_by(WebhookEndpoint.id)))


def take(session: Session, endpoint_id: int, now: dt.datetime, lease: dt.timedelta, limit: int
         ) -> list[tuple[int, int, str, int]]:
    """Claim up to `limit` due deliveries of one endpoint, oldest due first:
    (delivery id, event id, webhook-id, attempts so far including this one)."""
    chosen = (select(WebhookDelivery.id)
              .where(WebhookDelivery.endpoint_id == endpoint_id, _due(now), ~_earlier_owed())
              .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
    if is_postgres(session):
        chosen = chosen.with_for_update(skip_locked=True)
    # Two statements, not `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`: PostgreSQL may
    # run a locking subquery once per outer row, which at a backlog of thousands takes minutes.
    ids = list(session.scalars(chosen))
    if not ids:
        return []
    stmt = (update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), _due(now))
            .values(state=DeliveryState.delivering, lease_until=now + lease, attempts=WebhookDelivery.attempts + 1)
            .returning(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.webhook_id,
                       WebhookDelivery.attempts))
    rows = [tuple(r) for r in session.execute(stmt).all()]
    return sorted(rows, key=lambda r: r[1])  # type: ignore[return-value]


def release(session: Session, delivery_ids: list[int]) -> None:
    """Hand untried deliveries back as they were (their claim counted a try they did not get)."""
    if delivery_ids:
        session.execute(update(WebhookDelivery)
                        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.state == DeliveryState.delivering)
                        .values(state=DeliveryState.pending, lease_until=None, attempts=WebhookDelivery.attempts - 1))


def expire_leases(session: Session, now: dt.datetime) -> int:
    """Deliveries whose worker died mid-POST become due again (the try they had stays counted)."""
    return session.execute(update(WebhookDelivery)
                           .where(WebhookDelivery.state == DeliveryState.delivering,
                                  WebhookDelivery.lease_until < now)
                           .values(state=DeliveryState.pending, lease_until=None)).rowcount or 0
