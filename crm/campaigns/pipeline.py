"""The sending pipeline: plan, claim, send, sweep. The delivery rows are its only memory.

Entry points (the worker's tasks are one line around each):
- `plan(settings, campaign_id)`: one INSERT ... SELECT ... ON CONFLICT DO NOTHING of every
  eligible recipient (never loaded into Python), then `planned_at`, then wake-up calls.
- `start_sending(session, campaign_id, settings)`: for pipelines that plan their own
  deliveries (digests, volunteer opportunities): insert `Campaign` and `Delivery` rows (status
  `queued`) in your transaction, call this in the same transaction; it flips the campaign to
  `sending`, marks it planned, and queues the send tasks once your transaction commits.
- `send_some(settings, campaign_id)`: claim a batch (PostgreSQL: FOR UPDATE SKIP LOCKED with
  a lease; SQLite: the same conditional UPDATE, serialised by BEGIN IMMEDIATE), re-check each
  person just before their message (unsubscribed, paused, cancelled -> nothing goes), send the
  batch over one SMTP connection, commit each row as it is answered. A worker killed mid-batch
  leaves rows `sending` whose lease expires; they go back to the queue, so at most the one
  message in flight (answered 250 but not yet committed) can go twice.
- `sweep(settings)`: the beat's safety net: expired leases, lost plan or send tasks, scheduled
  campaigns that are due, campaigns with nothing left (-> `sent`). The broker is a wake-up
  call only: a lost or duplicated task changes nothing.

Per-kind template context: `CONTEXT_EXTRAS[kind] = fn(session, settings, campaign) -> (Person
-> {name: url})` adds per-recipient links (e.g. the opportunity's "respond" link, available to
templates as `links.respond`). A digest delivery's `items` are read from digest_item joined to
content_item for (campaign, contact), newest first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr
from enum import Enum
from typing import Any

from sqlalchemy import and_, bindparam, case, event, exists, func, literal, or_, select, text, true, update
from sqlmodel import Session

from crm.campaigns.compose import (
    ExtrasFn,
    LanguageRenderer,
    Links,
    MessageBuilder,
    NonAsciiAddress,
    Person,
    Tracker,
    language_for,
    load_compiled,
)
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus, DigestItem
from crm.campaigns.ratelimit import Pacer, limiter_for
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus
from crm.db import get_engine, is_postgres, session_scope, utcnow
from crm.events import service as events
from crm.mail import LANGUAGES, Outgoing, PermanentMailError, Sender, TransientMailError, make_sender
from crm.queue import enqueue

log = logging.getLogger(__name__)

PLAN_TASK = "worker.tasks.plan_campaign"
SEND_TASK = "worker.tasks.send_campaign"
MAX_ATTEMPTS = 8
SEND_TASKS_PER_CAMPAIGN = 4  # wake-up calls per kick; more workers than this still share via SKIP LOCKED
PENDING = (DeliveryStatus.queued, DeliveryStatus.sending)

ContextExtras = Callable[[Session, Settings, Campaign], ExtrasFn]
CONTEXT_EXTRAS: dict[str, ContextExtras] = {}


def register_context_extras(kind: str, fn: ContextExtras) -> None:
    CONTEXT_EXTRAS[kind] = fn


# --- planning ---------------------------------------------------------------------------------


def segment_rules(session: Session, segment_id: int | None) -> dict[str, Any] | None:
    if segment_id is None:
        return None
    try:
        from crm.segments.models import Segment  # type: ignore[import-not-found]
    except ImportError:
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
        state = campaign.state
    if state == CampaignState.sending:
        kick(settings, campaign_id)
    return added


def start_sending(session: Session, campaign_id: int, settings: Settings | None = None) -> bool:
    """For callers that inserted their own deliveries: flip to sending, wake the senders on commit."""
    now = utcnow()
    result = session.execute(
        update(Campaign).where(Campaign.id == campaign_id,
                               Campaign.state.in_([CampaignState.draft, CampaignState.scheduled]))
        .values(state=CampaignState.sending, started_at=now, planned_at=now, updated_at=now)
    )
    started = result.rowcount == 1
    if started and settings is not None:
        event.listen(session, "after_commit", lambda _s: kick(settings, campaign_id), once=True)
    return started


def kick(settings: Settings, campaign_id: int, n: int = SEND_TASKS_PER_CAMPAIGN) -> None:
    for _ in range(n):
        if not enqueue(settings, SEND_TASK, campaign_id):
            break


# --- claiming ---------------------------------------------------------------------------------


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
    pick = select(Delivery.id).where(_claimable(campaign_id, now)).order_by(Delivery.id).limit(n)
    if is_postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(pick.scalar_subquery()), _claimable(campaign_id, now),
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


# --- sending ----------------------------------------------------------------------------------


@dataclass
class SendSummary:
    campaign_id: int
    sent: int = 0
    skipped: int = 0
    retry: int = 0
    failed: int = 0
    bounced: int = 0
    batches: int = 0
    has_more: bool = False
    stopped: str | None = None  # paused / cancelled / lease / time

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def message_id_for(secret: str, domain: str, campaign_id: int, delivery_id: int) -> str:
    """Fixed per delivery before the first try: a resend after a crash carries the same Message-ID."""
    sig = hmac.new(secret.encode(), f"mid:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:12]
    return f"<c{campaign_id}.d{delivery_id}.{sig}@{domain}>"


def backoff(attempts: int) -> dt.timedelta:
    """Exponential with jitter, 2 s doubling up to an hour; kept in next_attempt_at, not the broker."""
    ceiling = min(3600.0, 2.0 * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))


class CampaignSender:
    """Everything compiled once per campaign: renderers per language, links, headers, limiter."""

    def __init__(self, settings: Settings, session: Session, campaign: Campaign) -> None:
        assert campaign.id is not None
        self.settings = settings
        self.campaign_id = campaign.id
        self.kind = campaign.kind
        self.list = campaign.list
        self.links = Links(settings)
        self.tracker = Tracker(self.links, campaign.track_opens, campaign.track_clicks)
        self.builder = MessageBuilder(settings)
        self.secret = self.links.secret
        self.domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
        extras_factory = CONTEXT_EXTRAS.get(campaign.kind)
        self.extras = extras_factory(session, settings, campaign) if extras_factory else None
        self.personal_items = campaign.kind == CampaignKind.digest
        self.shared = {"campaign": {"name": campaign.name, "subject": campaign.subject},
                       "items": [] if self.personal_items else content_items(session, campaign.content_ids)}
        self.versions = {"en": {"subject": campaign.subject, "body_html": campaign.body_html,
                                "body_text": campaign.body_text}}
        for lang, version in (campaign.translations or {}).items():
            if lang in LANGUAGES and isinstance(version, dict):
                self.versions[lang] = {**self.versions["en"], **{k: version.get(k) for k in
                                       ("subject", "body_html", "body_text") if version.get(k)}}
        self.template = campaign.template
        self._renderers: dict[str, LanguageRenderer] = {}
        self._session = session
        self.item_cache: dict[int, dict[str, Any]] = {}  # digests: content items, loaded once per sender

    def renderer(self, language: str) -> LanguageRenderer:
        lang = language_for(language, set(self.versions))
        if lang not in self._renderers:
            self._renderers[lang] = LanguageRenderer(
                self.settings, load_compiled(self.settings, self._session, self.template, lang), lang,
                self.shared, self.versions[lang], self.links, self.tracker, self.extras, self.personal_items)
        return self._renderers[lang]

    def message(self, person: Person) -> tuple[str, bytes | None, Outgoing]:
        rendered = self.renderer(person.language).render(person)
        mid = message_id_for(self.secret, self.domain, self.campaign_id, person.delivery_id)
        links = self.links.person(person.contact_id)
        headers = {
            "List-Unsubscribe": f"<{links['unsubscribe']}>, <{self.links.mailto(links['_unsubscribe_token'])}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"<{self.list}.{self.domain}>",
            "X-CRM-Campaign": str(self.campaign_id),
        }
        outgoing = Outgoing(to=person.email, rendered=rendered, message_id=mid, headers=headers,  # type: ignore[arg-type]
                            timezone=self.settings.timezone)
        try:
            return mid, self.builder.build(person.email, rendered, mid, headers), outgoing
        except NonAsciiAddress:
            outgoing.build(self.settings.mail_from)  # header checks now, so a refusal fails only this person
            return mid, None, outgoing  # non-ASCII address: the email package's SMTPUTF8 path


def content_items(session: Session, ids: list[int] | None) -> list[dict[str, Any]]:
    if not ids:
        return []
    try:
        from crm.content.models import ContentItem  # type: ignore[import-not-found]
    except ImportError:
        return []
    rows = session.scalars(select(ContentItem).where(ContentItem.id.in_(ids)))
    by_id = {r.id: _item(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _item(row: Any) -> dict[str, Any]:
    out = {k: getattr(row, k, None) for k in ("id", "title", "url", "summary", "topics", "language")}
    for k in ("published_at", "revised_at"):
        value = getattr(row, k, None)
        out[k] = value.isoformat() if value else None
    return out


def digest_items(session: Session, campaign_id: int, contact_ids: list[int],
                 cache: dict[int, dict[str, Any]] | None = None) -> dict[int, list[dict[str, Any]]]:
    """Each person's digest items from the ledger, newest first.

    A run has a few hundred items and hundreds of thousands of ledger rows: the ledger is read as
    id pairs and each item loaded once per `cache` (one per CampaignSender); people get copies,
    since the renderer adds language-dependent fields to them.
    """
    out: dict[int, list[dict[str, Any]]] = {c: [] for c in contact_ids}
    try:
        from crm.content.models import ContentItem
    except ImportError:
        return out
    cache = {} if cache is None else cache
    rows = session.execute(
        select(DigestItem.contact_id, DigestItem.content_id)
        .join(ContentItem, ContentItem.id == DigestItem.content_id)
        .where(DigestItem.campaign_id == campaign_id, DigestItem.contact_id.in_(contact_ids))
        .order_by(DigestItem.contact_id, ContentItem.published_at.desc(), ContentItem.id.desc())
    ).all()
    missing = {content_id for _, content_id in rows} - set(cache)
    if missing:
        for item in session.scalars(select(ContentItem).where(ContentItem.id.in_(missing))):
            cache[item.id] = _item(item)
    for contact_id, content_id in rows:
        out[contact_id].append(dict(cache[content_id]))
    return out


def _people(session: Session, sender: CampaignSender, ids: list[int]) -> tuple[list[Person], list[int]]:
    """The claimed rows' people, split into still eligible and not (-> skipped)."""
    ok = case((contacts.mailable(sender.list), True), else_=False).label("ok")
    rows = session.execute(
        select(Delivery.id, Contact.id, Contact.email, Contact.first_name, Contact.last_name, Contact.language,
               Contact.role, ok)
        .join(Contact, Contact.id == Delivery.contact_id).where(Delivery.id.in_(ids)).order_by(Delivery.id)
    ).all()
    people = [Person(contact_id=r[1], delivery_id=r[0], email=r[2] or "", first_name=r[3] or "",
                     last_name=r[4] or "", language=r[5] or "en", role=r[6]) for r in rows if r[7] and r[2]]
    ineligible = [r[0] for r in rows if not (r[7] and r[2])]
    if sender.personal_items and people:
        items = digest_items(session, sender.campaign_id, [p.contact_id for p in people], sender.item_cache)
        people = [Person(**{**p.__dict__, "items": items.get(p.contact_id, [])}) for p in people]
    return people, ineligible


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
            self.pending = (delivery_id, message_id)
        else:
            _mark(self.session, delivery_id, status=DeliveryStatus.sent, sent_at=utcnow(), message_id=message_id,
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


def _mark(session: Session, delivery_id: int, **values: Any) -> None:
    session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.sending)
                    .values(lease_until=None, **values))


def _permanent(session: Session, person: Person, exc: PermanentMailError, summary: SendSummary) -> None:
    now = utcnow()
    error = str(exc)[:1000]
    if exc.is_policy:
        # A policy rejection (5.7.x) says nothing certain about the address: record it for review.
        _mark(session, person.delivery_id, status=DeliveryStatus.failed, error=f"policy: {error}"[:1000])
        summary.failed += 1
    elif exc.recipient:
        _mark(session, person.delivery_id, status=DeliveryStatus.bounced, error=error, bounced_at=now)
        bounce_contact(session, person.contact_id, "bounced")
        summary.bounced += 1
    else:
        _mark(session, person.delivery_id, status=DeliveryStatus.failed, error=error)
        summary.failed += 1


def bounce_contact(session: Session, contact_id: int, reason: str) -> None:
    """Suppress the address and mark the contact (hard bounce or complaint)."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.email_key is None:
        return
    contacts.suppress(session, contact.email_key, reason)
    status = ContactStatus.complained if reason == "complained" else ContactStatus.bounced
    if contact.status == ContactStatus.active or (status == ContactStatus.complained
                                                 and contact.status == ContactStatus.bounced):
        contacts.mark_status(session, contact_id, status)


def send_some(settings: Settings, campaign_id: int, sender: Sender | None = None, *,
              max_seconds: float = 30.0, batch_size: int | None = None) -> SendSummary:
    """Claim and send batches for up to max_seconds; `has_more` asks the caller to queue another run."""
    summary = SendSummary(campaign_id)
    own_sender = sender is None
    sender = sender or make_sender(settings)
    started = time.monotonic()
    lease = dt.timedelta(seconds=settings.lease_seconds)
    size = batch_size or settings.send_batch_size
    pacer = Pacer(limiter_for(settings), chunk=max(1, int(settings.send_rate / 10)))
    try:
        with Session(get_engine(settings), expire_on_commit=False) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                return summary
            prepared = CampaignSender(settings, session, campaign)
            session.commit()
            recorder = Recorder(settings, session, campaign_id, prepared.list)
            try:
                while time.monotonic() - started < max_seconds:
                    ids, _ = claim(session, campaign_id, size, lease)
                    session.commit()
                    if not ids:
                        break
                    summary.batches += 1
                    # Stop well before the lease runs out, so nobody else can take these rows meanwhile.
                    deadline = time.monotonic() + lease.total_seconds() * 0.8
                    stop = _send_batch(settings, session, recorder, prepared, sender, ids, pacer, deadline, summary)
                    if stop:
                        summary.stopped = stop
                        break
                else:
                    summary.stopped = "time"
            finally:
                recorder.close()
            pacer.unused()
            if summary.stopped in (None, "time", "lease"):
                summary.has_more = has_claimable(session, campaign_id)
            finish_if_done(session, campaign_id)
            session.commit()
    finally:
        if own_sender:
            sender.close()
    return summary


def _send_batch(settings: Settings, session: Session, recorder: Recorder, prepared: CampaignSender,
                sender: Sender, ids: list[int], pacer: Pacer, deadline: float, summary: SendSummary) -> str | None:
    people, ineligible = _people(session, prepared, ids)
    if ineligible:
        session.execute(update(Delivery).where(Delivery.id.in_(ineligible)).values(
            status=DeliveryStatus.skipped, lease_until=None, error="not eligible when its turn came"))
        summary.skipped += len(ineligible)
    session.commit()
    transient_in_a_row = 0
    ids_in_order = [p.delivery_id for p in people]
    for i, person in enumerate(people):
        rest = ids_in_order[i:]  # only ever used on the rare paths that hand rows back
        if time.monotonic() > deadline:
            recorder.flush()
            release(session, rest, CampaignState.paused)
            session.commit()
            return "lease"
        state, eligible = recorder.check(person.contact_id)
        if state != CampaignState.sending:
            release(session, rest, state)
            session.commit()
            return state
        if not eligible:
            _mark(session, person.delivery_id, status=DeliveryStatus.skipped,
                  error="unsubscribed or suppressed before sending")
            session.commit()
            summary.skipped += 1
            continue
        try:
            mid, data, outgoing = prepared.message(person)
        except Exception as exc:  # noqa: BLE001 - a render error fails this person, not the batch
            _mark(session, person.delivery_id, status=DeliveryStatus.failed, error=f"render: {exc}"[:1000])
            session.commit()
            summary.failed += 1
            continue
        pacer.wait(len(people) - i)
        try:
            if data is not None:
                sender.send_raw(prepared.builder.envelope_from, person.email, data, mid)  # type: ignore[attr-defined]
            else:
                sender.send(outgoing.build(settings.mail_from))
        except TransientMailError as exc:
            transient_in_a_row += 1
            attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == person.delivery_id)) or 1
            give_up = attempts >= MAX_ATTEMPTS
            _mark(session, person.delivery_id,
                  status=DeliveryStatus.failed if give_up else DeliveryStatus.queued,
                  next_attempt_at=utcnow() + backoff(attempts), error=str(exc)[:1000])
            session.commit()
            summary.failed += give_up
            summary.retry += not give_up
            if transient_in_a_row >= 3:
                # The relay is down or refusing: hand the rest back rather than hammer it.
                session.execute(update(Delivery).where(Delivery.id.in_(rest[1:]),
                                                       Delivery.status == DeliveryStatus.sending)
                                .values(status=DeliveryStatus.queued, lease_until=None,
                                        next_attempt_at=utcnow() + backoff(1)))
                session.commit()
                return "transient"
            continue
        except PermanentMailError as exc:
            _permanent(session, person, exc, summary)
            session.commit()
            continue
        transient_in_a_row = 0
        recorder.sent(person.delivery_id, mid)
        summary.sent += 1
    recorder.flush()
    return None


def has_claimable(session: Session, campaign_id: int) -> bool:
    return session.scalar(select(exists().where(_claimable(campaign_id, utcnow())))) or False


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """`sent` only once planning finished and no delivery is queued or sending."""
    now = utcnow()
    result = session.execute(
        update(Campaign).where(
            Campaign.id == campaign_id, Campaign.state == CampaignState.sending, Campaign.planned_at.is_not(None),
            ~exists().where(Delivery.campaign_id == campaign_id, Delivery.status.in_(PENDING)),
        ).values(state=CampaignState.sent, finished_at=now, updated_at=now)
    )
    if result.rowcount == 1:
        events.record(session, "campaign.sent", campaign_id=campaign_id)
    return result.rowcount == 1


# --- the sweep --------------------------------------------------------------------------------


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
    from crm.campaigns import service

    out = SweepSummary()
    now = utcnow()
    with session_scope(settings) as session:
        due = list(session.scalars(select(Campaign.id).where(
            Campaign.state == CampaignState.scheduled, Campaign.send_at <= now)))
    for cid in due:
        with session_scope(settings) as session:
            started = service.start(session, cid, from_states=(CampaignState.scheduled,))
        if started:
            out.started.append(cid)
            enqueue(settings, PLAN_TASK, cid)
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
    for cid in unplanned:
        out.replanned.append(cid)
        enqueue(settings, PLAN_TASK, cid)
    for cid in out.kicked:
        kick(settings, cid, 1)
    return out


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Delivery counts per status in one GROUP BY."""
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                           .group_by(Delivery.status)).all()
    return {status: n for status, n in rows}
