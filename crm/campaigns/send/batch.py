"""One claimed batch sent over CRM_SMTP_CONNECTIONS connections in rounds, paced by CRM_SEND_RATE
and by CRM_DOMAIN_RATES.

The batch is not sent strictly in order: the next message is the first one whose recipient
domain has a slot within one global interval; it then waits for its global slot and its domain slot. When every message left waits on its domain, the
ones whose slot comes within SHORT_WAIT stay (the loop sleeps until the first), and the rest go
back to the queue due when their domain's slot would come (`claims.put_off`): a slowed domain
never holds up a batch, and a sender never sleeps while mail to other domains is waiting.

Each person is re-checked just before their message (unsubscribed, paused, cancelled -> nothing
goes) and each row committed as it is answered; see `record.Recorder`. With N connections a
message's answer is read when its connection comes round again (`crm.mail.rounds`), so a sender
killed mid-send may have up to N messages taken by the relay and not yet recorded.
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
from crm.mail import OneAtATime, PermanentMailError, RoundSender, TransientMailError

Rounds = RoundSender | OneAtATime
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


class Answers:
    """What the relay answered, recorded as each answer is read (on a later turn with several connections)."""

    def __init__(self, session: Session, recorder: Recorder, domains: DomainPacer, summary: SendSummary) -> None:
        self.session, self.recorder, self.domains, self.summary = session, recorder, domains, summary
        self.transient_in_a_row = 0

    def __call__(self, tag: tuple[Person, str], exc: TransientMailError | PermanentMailError | None) -> None:
        person, mid = tag
        if exc is None:
            self.transient_in_a_row = 0
            self.recorder.sent(person.delivery_id, mid)
            self.summary.sent += 1
        elif isinstance(exc, TransientMailError):
            self.recorder.flush()
            retry_later(self.session, person, exc, self.summary)
            if exc.is_deferral:
                self.summary.deferred += 1
                self.domains.defer(domain_of(person.email))
            else:
                self.transient_in_a_row += 1
        else:
            self.recorder.flush()
            permanent(self.session, person, exc, self.summary)
            self.session.commit()


def send_batch(settings: Settings, session: Session, recorder: Recorder, prepared: CampaignSender,
               sender: Rounds, ids: list[int], pacers: tuple[Pacer, DomainPacer], deadline: float,
               summary: SendSummary) -> str | None:
    """Send one claimed batch; returns why it stopped early (paused, cancelled, lease, transient) or None.

    Before each person the connection they will go on is freed (`collect`): the answer it held is
    recorded by the same statement that re-checks the person, so no more than one message per
    connection is ever sent and unrecorded. Every answer is in before the batch returns.
    """
    pacer, domains = pacers
    people, ineligible = batch_people(session, prepared, ids)
    _skip(session, ineligible, "not eligible when its turn came", summary)
    turns = Turns(people, domains, horizon=1.0 / settings.send_rate)
    answers = Answers(session, recorder, domains, summary)

    def stop(release_ids: list[int], state: str) -> None:
        sender.drain(answers)
        recorder.flush()
        release(session, release_ids, state)
        session.commit()

    while turns:
        if time.monotonic() > deadline:
            stop(turns.ids(), CampaignState.paused)
            return "lease"
        person, wait, blocked = turns.next()
        if person is None:
            time.sleep(turns.put_off_far(session, blocked, summary))
            continue
        slot = time.monotonic() + wait
        sender.collect(answers)
        state, eligible = recorder.check(person.contact_id)
        if state != CampaignState.sending:
            stop([person.delivery_id, *turns.ids()], state)
            return state
        if not eligible:
            _skip(session, [person.delivery_id], "unsubscribed or suppressed before sending", summary)
            continue
        _send_one(settings, session, prepared, sender, person, (pacer, len(turns) + 1, slot), answers, summary)
        if answers.transient_in_a_row >= 3:
            # The relay is down or refusing: hand the rest back rather than hammer it.
            sender.drain(answers)
            recorder.flush()
            hand_back(session, turns.ids())
            return "transient"
    sender.drain(answers)
    recorder.flush()
    return None


def _send_one(settings: Settings, session: Session, prepared: CampaignSender, sender: Rounds, person: Person,
              pacing: tuple[Pacer, int, float], answers: Answers, summary: SendSummary) -> None:
    """Render and send one message in its slot. The relay's answer, to the envelope now or to the
    body on a later turn, is recorded by `answers`."""
    pacer, remaining, slot = pacing
    try:
        mid, data, outgoing = prepared.message(person)
    except Exception as exc:  # noqa: BLE001 - a render error fails this person, not the batch
        mark(session, person.delivery_id, status=DeliveryStatus.failed, error=f"render: {exc}"[:1000])
        session.commit()
        summary.failed += 1
        return
    pacer.wait(remaining)  # the global slot right before the send: no jitter between them
    _sleep_until(slot)
    try:
        if data is not None:
            sender.submit(prepared.builder.envelope_from, person.email, data, mid, (person, mid))
        else:
            sender.send(outgoing.build(settings.mail_from), (person, mid))
    except (TransientMailError, PermanentMailError) as exc:  # refused at the envelope: nothing went
        answers((person, mid), exc)
