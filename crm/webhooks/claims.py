"""Which deliveries may be tried now, and taking a batch of them for one endpoint in one statement.

Order per (endpoint, contact) is SPEC 12's rule: a delivery is due only while no earlier event of
the same contact is still owed to the same endpoint (pending or in flight). The claim checks it
for a window of due candidates at once (each candidate contact's earliest owed event, one grouped
query on the order index) inside the claiming transaction, so two dispatchers (two processes, or
two threads) can never send a contact's later event first; on PostgreSQL `SKIP LOCKED` lets them
share an endpoint's backlog without waiting on each other. A set, not a correlated NOT EXISTS per
row: planned on stale statistics that one became a nested loop over the whole backlog (13 s a
claim at 9,000 deliveries), while these two queries stay linear at worst.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, any_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from crm.db import is_postgres
from crm.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint

# Candidates looked at per delivery wanted: blocked ones (a contact's later events) are passed over.
WINDOW = 4
_OWED = (DeliveryState.pending, DeliveryState.delivering)


def one_of(session: Session, column: Any, values: list[int]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter: the statement's text is
    the same whatever the count, so psycopg does not parse hundreds of placeholders for every batch."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _due(now: dt.datetime) -> Any:
    return (WebhookDelivery.state == DeliveryState.pending) & (WebhookDelivery.next_attempt_at <= now)


def endpoints_with_work(session: Session, now: dt.datetime) -> list[int]:
    """Enabled endpoints with a delivery due now. Without the order check: a lane opened for an endpoint
    whose due deliveries all wait on an earlier one claims nothing and ends."""
    has_due = exists().where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, _due(now))
    return list(session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True), has_due)
                                .order_by(WebhookEndpoint.id)))


def _first_owed(session: Session, endpoint_id: int, contact_ids: set[int]) -> dict[int, int]:
    """Each contact's earliest event still owed to this endpoint (pending or in flight)."""
    if not contact_ids:
        return {}
    rows = session.execute(select(WebhookDelivery.contact_id, func.min(WebhookDelivery.event_id))
                           .where(WebhookDelivery.endpoint_id == endpoint_id,
                                  one_of(session, WebhookDelivery.contact_id, sorted(contact_ids)),
                                  WebhookDelivery.state.in_(_OWED))
                           .group_by(WebhookDelivery.contact_id))
    return {contact_id: event_id for contact_id, event_id in rows}


def _in_order(session: Session, endpoint_id: int, now: dt.datetime, limit: int) -> list[int]:
    """Up to `limit` due deliveries, oldest due first, that no earlier event of their contact waits before."""
    chosen: list[int] = []
    after: tuple[dt.datetime, int] | None = None
    while len(chosen) < limit:
        window = (select(WebhookDelivery.id, WebhookDelivery.contact_id, WebhookDelivery.event_id,
                         WebhookDelivery.next_attempt_at)
                  .where(WebhookDelivery.endpoint_id == endpoint_id, _due(now))
                  .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit * WINDOW))
        if after is not None:
            window = window.where(or_(WebhookDelivery.next_attempt_at > after[0],
                                      and_(WebhookDelivery.next_attempt_at == after[0], WebhookDelivery.id > after[1])))
        if is_postgres(session):
            window = window.with_for_update(skip_locked=True)
        rows = session.execute(window).all()
        first = _first_owed(session, endpoint_id, {r.contact_id for r in rows if r.contact_id is not None})
        chosen += [r.id for r in rows if r.contact_id is None or first.get(r.contact_id) == r.event_id]
        if len(rows) < limit * WINDOW:
            break
        after = (rows[-1].next_attempt_at, rows[-1].id)
    return chosen[:limit]


def take(session: Session, endpoint_id: int, now: dt.datetime, lease: dt.timedelta, limit: int
         ) -> list[tuple[int, int, str, int]]:
    """Claim up to `limit` due deliveries of one endpoint, oldest due first:
    (delivery id, event id, webhook-id, attempts so far including this one)."""
    # Chosen first, then updated: PostgreSQL may run a locking subquery of an UPDATE once per outer
    # row, which at a backlog of thousands takes minutes.
    ids = _in_order(session, endpoint_id, now, limit)
    if not ids:
        return []
    stmt = (update(WebhookDelivery)
            .where(one_of(session, WebhookDelivery.id, ids), _due(now))
            .values(state=DeliveryState.delivering, lease_until=now + lease, attempts=WebhookDelivery.attempts + 1)
            .returning(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.webhook_id,
                       WebhookDelivery.attempts))
    rows = [tuple(r) for r in session.execute(stmt).all()]
    return sorted(rows, key=lambda r: r[1])  # type: ignore[return-value]


def release(session: Session, delivery_ids: list[int]) -> None:
    """Hand untried deliveries back as they were (their claim counted a try they did not get)."""
    if delivery_ids:
        session.execute(update(WebhookDelivery)
                        .where(one_of(session, WebhookDelivery.id, delivery_ids), WebhookDelivery.state == DeliveryState.delivering)
                        .values(state=DeliveryState.pending, lease_until=None, attempts=WebhookDelivery.attempts - 1))


def expire_leases(session: Session, now: dt.datetime) -> int:
    """Deliveries whose worker died mid-POST become due again (the try they had stays counted)."""
    return session.execute(update(WebhookDelivery)
                           .where(WebhookDelivery.state == DeliveryState.delivering,
                                  WebhookDelivery.lease_until < now)
                           .values(state=DeliveryState.pending, lease_until=None)).rowcount or 0
