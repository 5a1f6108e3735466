"""What happened to each message, written as it is answered: the Recorder and the failure rules.

A recorded 250 is written before anything else happens, so a crash between a 250 and its
record can only ever concern the one message in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlmodel import Session

from crm.campaigns.compose import Person
from crm.campaigns.models import Campaign, Delivery, DeliveryStatus
from crm.campaigns.send.claims import backoff
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.bounces import bounce
from crm.contacts.models import Contact
from crm.db import get_engine, is_postgres, utcnow
from crm.mail import PermanentMailError, TransientMailError

MAX_ATTEMPTS = 8


@dataclass
class SendSummary:
    campaign_id: int
    sent: int = 0
    skipped: int = 0
    retry: int = 0
    failed: int = 0
    bounced: int = 0
    batches: int = 0
    deferred: int = 0  # 421 / 4.7.x answers: the domain was slowed and the message retried later
    put_off: int = 0  # rows given back because their domain had no slot soon
    has_more: bool = False
    stopped: str | None = None  # paused / cancelled / lease / time

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class Recorder:
    """Records outcomes and asks "may this person still be mailed?" with as few round trips as it can.

    PostgreSQL: one autocommit statement per message: a data-modifying CTE marks the previous
    message `sent` (its 250 just came back) and, in the same round trip, reads the campaign's
    state and the next person's eligibility. SQLite (one embedded sender): plain statements.
    A recorded 250 is written before anything else happens, so a crash between a 250 and its
    record can only ever concern the one message in flight.
    """

    def __init__(self, settings: Settings, session: Session, campaign_id: int, list_key: str) -> None:
        self.session = session
        self.campaign_id = campaign_id
        self.list_key = list_key
        self.pg = is_postgres(session)
        self.pending: tuple[int, str] | None = None
        self._conn: Any = None
        if self.pg:
            self._conn = get_engine(settings).connect().execution_options(isolation_level="AUTOCOMMIT")
            # A killed worker never loses a commit (the server has it); only a database crash could lose
            # the last fraction of a second, and per-message commits get much cheaper.
            self._conn.execute(text("SET synchronous_commit = off"))
            done = (update(Delivery)
                    .where(Delivery.id == bindparam("done_id"), Delivery.status == DeliveryStatus.sending)
                    .values(status=DeliveryStatus.sent, sent_at=bindparam("now"), message_id=bindparam("mid"),
                            lease_until=None, error=None)
                    .returning(Delivery.id).cte("done"))
            eligible = select(Contact.id).where(Contact.id == bindparam("who"),
                                                contacts.mailable(list_key)).exists()
            advance = select(Campaign.state, eligible, select(func.count()).select_from(done).scalar_subquery()
                             ).where(Campaign.id == campaign_id)
            # Compiled once and run as a server-side prepared statement on the driver's connection:
            # this is the one statement per message, and SQLAlchemy's per-call work was a third of it.
            compiled = advance.compile(dialect=self._conn.dialect)
            self._sql = str(compiled)
            self._params = {k: (v.value if isinstance(v, Enum) else v) for k, v in compiled.params.items()}
            self._raw = self._conn.connection.driver_connection

    def sent(self, delivery_id: int, message_id: str) -> None:
        if self.pg:
            self.flush()  # answers come in together when a batch ends: one pending 250 at a time
            self.pending = (delivery_id, message_id)
        else:
            mark(self.session, delivery_id, status=DeliveryStatus.sent, sent_at=utcnow(), message_id=message_id,
                  error=None)
            self.session.commit()

    def check(self, contact_id: int) -> tuple[str, bool]:
        """Record the pending 250 (if any), then: campaign state, and is this person still eligible?"""
        if self.pg:
            done_id, mid = self.pending or (-1, "")
            params = {**self._params, "done_id": done_id, "mid": mid, "now": utcnow(), "who": contact_id}
            row = self._raw.execute(self._sql, params, prepare=True).fetchone()
            self.pending = None
            return row[0], bool(row[1])
        eligible = select(Contact.id).where(Contact.id == contact_id, contacts.mailable(self.list_key)).exists()
        row = self.session.execute(select(Campaign.state, eligible).where(Campaign.id == self.campaign_id)).one()
        self.session.commit()  # never hold SQLite's write lock across an SMTP round trip
        return row[0], bool(row[1])

    def flush(self) -> None:
        if self.pending is not None:
            self.check(-1)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._conn is not None:
                self._conn.close()


def mark(session: Session, delivery_id: int, **values: Any) -> None:
    session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.sending)
                    .values(lease_until=None, **values))


def permanent(session: Session, person: Person, exc: PermanentMailError, summary: SendSummary) -> None:
    now = utcnow()
    error = str(exc)[:1000]
    if exc.is_policy:
        # A policy rejection (5.7.x) says nothing certain about the address: record it for review.
        mark(session, person.delivery_id, status=DeliveryStatus.failed, error=f"policy: {error}"[:1000])
        summary.failed += 1
    elif exc.recipient:
        mark(session, person.delivery_id, status=DeliveryStatus.bounced, error=error, bounced_at=now)
        bounce(session, person.contact_id, "bounced")
        summary.bounced += 1
    else:
        mark(session, person.delivery_id, status=DeliveryStatus.failed, error=error)
        summary.failed += 1




def retry_later(session: Session, person: Person, exc: TransientMailError, summary: SendSummary) -> None:
    attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == person.delivery_id)) or 1
    give_up = attempts >= MAX_ATTEMPTS
    mark(session, person.delivery_id, status=DeliveryStatus.failed if give_up else DeliveryStatus.queued,
          next_attempt_at=utcnow() + backoff(attempts), error=str(exc)[:1000])
    session.commit()
    summary.failed += give_up
    summary.retry += not give_up


