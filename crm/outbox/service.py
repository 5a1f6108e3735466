"""Transactional email outbox: queue in the caller's transaction, deliver later, exactly once.

A row is claimed with a conditional UPDATE (pending, or sending with an expired
lease) so two workers running the same task never both send it; a worker killed
between SMTP 250 and marking the row sent can cause at most that one message to go
again when its lease expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, exists, insert, literal_column, or_, select, update
from sqlmodel import Session

from crm.backoff import backoff as retry_delay
from crm.config import Settings
from crm.contacts import bounces
from crm.db import insert_ignore, session_scope, utcnow
from crm.mail import (
    Outgoing,
    PermanentMailError,
    Sender,
    TransientMailError,
    make_sender,
    new_message_id,
    render,
)
from crm.outbox.models import OutboxMessage, OutboxState
from crm.queue import publish_outbox

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=120)
MAX_ATTEMPTS = 12
TRANSACTIONAL_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_OUTBOX_INSERT = insert(_OUTBOX).returning(_OUTBOX.c.id)  # built once; executed with the row as parameters


def queue(
    session: Session,
    template: str,
    to: str,
    context: dict[str, Any],
    *,
    contact_id: int | None = None,
    language: str = "en",
    dedupe_key: str | None = None,
    per_window: bool = False,
) -> int | None:
    """Add a message to the outbox in the caller's transaction; None if dedupe_key was used already.

    per_window: mail a stranger can trigger by typing an address (confirm, welcome, acknowledgement,
    fresh link...) goes at most once per kind and address per FLOOD_WINDOW: see _queue_once_per_window.

    The send task is published when that transaction commits (crm.queue), so no caller wakes it.
    """
    now = utcnow()
    if per_window:
        message_id = _queue_once_per_window(session, template, to, context, contact_id, language, now)
        if message_id is not None:
            publish_outbox(session, [message_id])
        return message_id
    row = {
        "template": template, "to_address": to, "context": context, "contact_id": contact_id,
        "language": language, "dedupe_key": dedupe_key, "state": OutboxState.pending, "attempts": 0,
        "created_at": now, "next_attempt_at": now,
    }
    if dedupe_key is None:
        # A Core INSERT ... RETURNING id: no ORM object to build, track and flush for a row nobody
        # reads back here. Pending ORM changes still go first, as they did with the flush.
        session.flush()
        message_id = session.scalar(_OUTBOX_INSERT, row)
    elif insert_ignore(session, OutboxMessage, row, ["dedupe_key"]):
        message_id = session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
    else:
        return None
    publish_outbox(session, [message_id])  # the worker is woken when the caller commits
    return message_id


FLOOD_WINDOW = dt.timedelta(minutes=10)


def _queue_once_per_window(session: Session, template: str, to: str, context: dict[str, Any],
                           contact_id: int | None, language: str, now: dt.datetime) -> int | None:
    """One INSERT ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT DO NOTHING RETURNING id.

    The NOT EXISTS makes the window sliding (no two of a kind to one address within ten minutes,
    whatever the clock says); the dedupe key (kind, address, ten-minute bucket) is what two
    concurrent transactions collide on under PostgreSQL's READ COMMITTED, where neither sees the
    other's uncommitted row: the unique index makes the second one insert nothing.
    """
    session.flush()
    bucket = int(now.timestamp() // FLOOD_WINDOW.total_seconds())
    key = f"w:{template}:{_address_digest(to)}:{bucket}"
    row = {"template": template, "to_address": to, "context": context, "contact_id": contact_id,
           "language": language, "dedupe_key": key, "state": OutboxState.pending.value, "attempts": 0,
           "created_at": now, "next_attempt_at": now, "since": now - FLOOD_WINDOW}
    return session.scalar(_once_per_window_insert(session.get_bind().dialect.name), row)


def _address_digest(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]


@lru_cache(maxsize=4)
def _once_per_window_insert(dialect: str) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    col = _OUTBOX.c
    names = ["template", "to_address", "context", "contact_id", "language", "dedupe_key", "state", "attempts",
             "created_at", "next_attempt_at"]
    params = [bindparam(n, type_=col[n].type) for n in names]
    recent = (select(literal_column("1")).select_from(_OUTBOX)
              .where(col.template == bindparam("template"), col.to_address == bindparam("to_address"),
                     col.created_at > bindparam("since", type_=col.created_at.type)))
    source = select(*params).where(~exists(recent))
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_OUTBOX).from_select(names, source)
    return stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(col.id)


@dataclass(frozen=True)
class DeliveryResult:
    id: int
    outcome: str  # sent, already-done, busy, retry, failed


def _claim(session: Session, message_id: int, now: dt.datetime) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            or_(
                OutboxMessage.state == OutboxState.pending,
                (OutboxMessage.state == OutboxState.sending) & (OutboxMessage.lease_until < now),
            ),
        )
        .values(state=OutboxState.sending, lease_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
    )
    return result.rowcount == 1


def deliver(settings: Settings, sender: Sender, message_id: int) -> DeliveryResult:
    """Send one outbox message if it is still pending. Safe to call any number of times."""
    now = utcnow()
    with session_scope(settings) as session:
        if not _claim(session, message_id, now):
            row = session.get(OutboxMessage, message_id)
            return DeliveryResult(message_id, "already-done" if row is None or row.state != "sending" else "busy")
    return _send_claimed(settings, sender, message_id)


DRAIN_BATCH = 50


def drain(settings: Settings, sender: Sender, *, batch: int = DRAIN_BATCH, max_batches: int = 20
          ) -> list[DeliveryResult]:
    """Send what is due in batches over one sender (one SMTP connection, one file-sender pass).

    Each batch is claimed by one conditional UPDATE with the same lease as a single claim, so two
    drains (or a drain and a per-message task) never both send a row; each message is still marked
    sent on its own right after its 250, so a worker killed mid-batch resends at most the one
    message that was on the wire.
    """
    results: list[DeliveryResult] = []
    for _ in range(max_batches):
        with session_scope(settings) as session:  # claim and read the batch in one commit
            ids = _claim_batch(session, utcnow(), batch)
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id))
            snapshots = [_snapshot(settings, msg) for msg in rows]
        results += [_send_snapshot(settings, sender, snap) for snap in snapshots]
        if len(ids) < batch:
            break
    return results


def _claimable(now: dt.datetime) -> Any:
    return or_(
        (OutboxMessage.state == OutboxState.pending) & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.state == OutboxState.sending) & (OutboxMessage.lease_until < now),
    )


def _claim_batch(session: Session, now: dt.datetime, batch: int) -> list[int]:
    # The outer WHERE repeats the condition: PostgreSQL re-checks it on each row after waiting for a
    # concurrent claimer's lock, so a row another drain took in the meantime is skipped, not re-leased.
    due_ids = select(OutboxMessage.id).where(_claimable(now)).order_by(OutboxMessage.id).limit(batch)
    stmt = (update(OutboxMessage)
            .where(OutboxMessage.id.in_(due_ids.scalar_subquery()), _claimable(now))
            .values(state=OutboxState.sending, lease_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.id))
    return sorted(session.scalars(stmt))


Snapshot = tuple[int, str, str, dict[str, Any], str, str, int | None, int]


def _snapshot(settings: Settings, msg: OutboxMessage) -> Snapshot:
    """What sending needs, read under the lease; the Message-ID is fixed before the first try."""
    assert msg.id is not None
    if msg.message_id is None:
        msg.message_id = new_message_id(settings)
    return (msg.id, msg.template, msg.to_address, dict(msg.context), msg.language, msg.message_id,
            msg.contact_id, msg.attempts)


def _send_claimed(settings: Settings, sender: Sender, message_id: int) -> DeliveryResult:
    with session_scope(settings) as session:
        msg = session.get(OutboxMessage, message_id)
        assert msg is not None
        snapshot = _snapshot(settings, msg)
    return _send_snapshot(settings, sender, snapshot)


def _send_snapshot(settings: Settings, sender: Sender, snapshot: Snapshot) -> DeliveryResult:
    """Render, send and mark one message this process holds the lease on."""
    message_id, template, to, context, language, mid, contact_id, attempts = snapshot

    try:
        message = Outgoing(to=to, rendered=render(settings, template, context, language), message_id=mid,
                           headers=TRANSACTIONAL_HEADERS, kind=template, timezone=settings.timezone
                           ).build(settings.mail_from)
    except Exception as exc:  # noqa: BLE001 - a template bug must not leave the row leased forever
        # Retried with backoff rather than failed at once: a worker older than the release that
        # added the template will be replaced; MAX_ATTEMPTS still ends it and last_error says why.
        log.exception("outbox message %s cannot be rendered", message_id)
        return _after_failure(settings, message_id, attempts, f"cannot render {template}: {exc}", permanent=False)
    try:
        sender.send(message)
    except TransientMailError as exc:
        return _after_failure(settings, message_id, attempts, str(exc), permanent=False)
    except PermanentMailError as exc:
        # A refused address (5.1.x) is the person's; a policy refusal (5.7.x) is about us, not them.
        if exc.recipient and not exc.is_policy and contact_id is not None:
            with session_scope(settings) as session:
                bounces.bounce(session, contact_id)  # the one bounce rule
        return _after_failure(settings, message_id, attempts, str(exc), permanent=True)

    with session_scope(settings) as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id)
            .values(state=OutboxState.sent, sent_at=utcnow(), lease_until=None, last_error=None)
        )
    return DeliveryResult(message_id, "sent")


def backoff(attempts: int) -> dt.timedelta:
    """30 s doubling up to an hour (crm.backoff: full jitter)."""
    return retry_delay(attempts, base=30.0)


def _after_failure(settings: Settings, message_id: int, attempts: int, error: str, *, permanent: bool
                   ) -> DeliveryResult:
    give_up = permanent or attempts >= MAX_ATTEMPTS
    with session_scope(settings) as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(
                state=OutboxState.failed if give_up else OutboxState.pending,
                next_attempt_at=utcnow() + backoff(attempts),
                lease_until=None,
                last_error=error[:1000],
            )
        )
    log.warning("outbox message %s %s: %s", message_id, "failed" if give_up else "will retry", error)
    return DeliveryResult(message_id, "failed" if give_up else "retry")




def due(session: Session, *, limit: int = 500, grace: dt.timedelta = dt.timedelta(seconds=10)) -> list[int]:
    """Messages that should be sending but nobody is on: never enqueued, broker lost it, retry due,
    or a worker died holding the lease."""
    now = utcnow()
    return list(session.scalars(
        select(OutboxMessage.id).where(
            or_(
                (OutboxMessage.state == OutboxState.pending) & (OutboxMessage.next_attempt_at <= now)
                & (OutboxMessage.created_at <= now - grace),
                (OutboxMessage.state == OutboxState.sending) & (OutboxMessage.lease_until < now),
            )
        ).order_by(OutboxMessage.id).limit(limit)
    ))





# --- the worker's entry points ----------------------------------------------------------------


def deliver_one(settings: Settings, message_id: int) -> str:
    """The send task's whole job: this message, then whatever else is due, over one connection.

    A burst of form posts leaves many rows due: sending them here in batches means the wake-ups
    that follow find their rows done instead of each opening SMTP.
    """
    sender = make_sender(settings)
    try:
        outcome = deliver(settings, sender, message_id).outcome
        drain(settings, sender)
        return outcome
    finally:
        sender.close()


def sweep(settings: Settings) -> dict[str, Any]:
    """Send what the broker never delivered (it was down, or a worker died mid-lease), over one connection."""
    with session_scope(settings) as session:
        ids = due(session)
    outcomes: dict[str, int] = {}
    sender = make_sender(settings)
    try:
        for message_id in ids:
            outcome = deliver(settings, sender, message_id).outcome
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        sender.close()
    return {"due": len(ids), **outcomes}
