"""One claimed batch sent over one connection, paced by CRM_SEND_RATE and by CRM_DOMAIN_RATES.

The batch is not sent strictly in order: the next message is the first one whose recipient
domain has a slot within one global interval; it then waits for its global slot and its domain slot. When every message left waits on its domain, the
ones whose slot comes within SHORT_WAIT stay (the loop sleeps until the first), and the rest go
back to the queue due when their domain's slot would come (`claims.put_off`): a slowed domain
never holds up a batch, and a sender never sleeps while mail to other domains is waiting.

Each person is re-checked just before their message (unsubscribed, paused, cancelled -> nothing
goes) and each row committed as it is answered; see `record.Recorder`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

from sqlalchemy import update
from sqlmodel import Session

from crm.campaigns.compose import Person
from crm.campaigns.domain_rates import DomainPacer, domain_of
from crm.campaigns.models import CampaignState, Delivery, DeliveryStatus
from crm.campaigns.ratelimit import Pacer
from crm.campaigns.send.claims import hand_back, put_off, release
from crm.campaigns.send.prepare import CampaignSender, batch_people
from crm.campaigns.send.record import Recorder, SendSummary, mark, permanent, retry_later
from crm.config import Settings
from crm.db import utcnow
from crm.mail import PermanentMailError, Sender, TransientMailError

SHORT_WAIT = 0.02  # seconds a sender may sleep for a paced domain when nothing else in its batch can go


class Turns:
    """Whose turn it is: the batch's people, taken as their recipient domain has a slot."""

    def __init__(self, people: list[Person], domains: DomainPacer, horizon: float) -> None:
        self.waiting = list(people)
        self.domains = domains
        self.horizon = horizon

    def __len__(self) -> int:
        return len(self.waiting)

    def ids(self) -> list[int]:
        return [p.delivery_id for p in self.waiting]

    def next(self) -> tuple[Person | None, float, dict[str, float]]:
        """(person, seconds to their domain slot, {}) or (None, 0, {blocked domain: seconds to its slot})."""
        blocked: dict[str, float] = {}
        for i, person in enumerate(self.waiting):
            domain = domain_of(person.email)
            if domain in blocked:
                continue
            ok, wait = self.domains.try_reserve(domain, self.horizon)
            if ok:
                del self.waiting[i]
                return person, wait, {}
            blocked[domain] = wait
        return None, 0.0, blocked

    def put_off_far(self, session: Session, blocked: dict[str, float], summary: SendSummary) -> float:
        """Keep who can go within SHORT_WAIT, give the rest back due at their slot; seconds to sleep."""
        now = utcnow()
        keep: list[Person] = []
        due: dict[int, dt.datetime] = {}
        seen: dict[str, int] = {}
        intervals = {d: self.domains.interval(d) for d in blocked}
        for person in self.waiting:
            domain = domain_of(person.email)
            i = seen[domain] = seen.get(domain, -1) + 1
            at = blocked[domain] + i * intervals[domain]
            if at <= SHORT_WAIT:
                keep.append(person)
            else:
                due[person.delivery_id] = now + dt.timedelta(seconds=at)
        put_off(session, due)
        summary.put_off += len(due)
        self.waiting = keep
        return min((blocked[domain_of(p.email)] for p in keep), default=0.0)


def _sleep_until(at: float) -> None:
    pause = at - time.monotonic()
    if pause > 0:
        time.sleep(pause)


def _skip(session: Session, ids: Iterable[int], error: str, summary: SendSummary) -> None:
    ids = list(ids)
    if ids:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
            status=DeliveryStatus.skipped, lease_until=None, error=error))
        summary.skipped += len(ids)
    session.commit()


def send_batch(settings: Settings, session: Session, recorder: Recorder, prepared: CampaignSender,
               sender: Sender, ids: list[int], pacers: tuple[Pacer, DomainPacer], deadline: float,
               summary: SendSummary) -> str | None:
    """Send one claimed batch; returns why it stopped early (paused, cancelled, lease, transient) or None."""
    pacer, domains = pacers
    people, ineligible = batch_people(session, prepared, ids)
    _skip(session, ineligible, "not eligible when its turn came", summary)
    turns = Turns(people, domains, horizon=1.0 / settings.send_rate)
    transient_in_a_row = 0
    while turns:
        if time.monotonic() > deadline:
            recorder.flush()
            release(session, turns.ids(), CampaignState.paused)
            session.commit()
            return "lease"
        person, wait, blocked = turns.next()
        if person is None:
            time.sleep(turns.put_off_far(session, blocked, summary))
            continue
        slot = time.monotonic() + wait
        state, eligible = recorder.check(person.contact_id)
        if state != CampaignState.sending:
            release(session, [person.delivery_id, *turns.ids()], state)
            session.commit()
            return state
        if not eligible:
            _skip(session, [person.delivery_id], "unsubscribed or suppressed before sending", summary)
            continue
        outcome, mid = _send_one(settings, session, prepared, sender, person, (pacer, len(turns) + 1, slot), summary)
        if outcome == "sent":
            transient_in_a_row = 0
            recorder.sent(person.delivery_id, mid)
            summary.sent += 1
        elif outcome == "deferred":
            domains.defer(domain_of(person.email))
        elif outcome == "transient":
            transient_in_a_row += 1
            if transient_in_a_row >= 3:
                # The relay is down or refusing: hand the rest back rather than hammer it.
                hand_back(session, turns.ids())
                return "transient"
    recorder.flush()
    return None


def _send_one(settings: Settings, session: Session, prepared: CampaignSender, sender: Sender, person: Person,
              pacing: tuple[Pacer, int, float], summary: SendSummary) -> tuple[str, str]:
    """Render and send one message in its slot; returns sent, deferred, transient, failed or permanent."""
    pacer, remaining, slot = pacing
    try:
        mid, data, outgoing = prepared.message(person)
    except Exception as exc:  # noqa: BLE001 - a render error fails this person, not the batch
        mark(session, person.delivery_id, status=DeliveryStatus.failed, error=f"render: {exc}"[:1000])
        session.commit()
        summary.failed += 1
        return "failed", ""
    pacer.wait(remaining)  # the global slot right before the send: no jitter between them
    _sleep_until(slot)
    try:
        if data is not None:
            sender.send_raw(prepared.builder.envelope_from, person.email, data, mid)  # type: ignore[attr-defined]
        else:
            sender.send(outgoing.build(settings.mail_from))
    except TransientMailError as exc:
        retry_later(session, person, exc, summary)
        if exc.is_deferral:
            summary.deferred += 1
            return "deferred", mid
        return "transient", mid
    except PermanentMailError as exc:
        permanent(session, person, exc, summary)
        session.commit()
        return "permanent", mid
    return "sent", mid
