"""The sending pipeline: claim, send, record. The delivery rows are its only memory.

Its neighbours: `planning.plan` inserts the deliveries, `lifecycle.start_sending` starts a campaign
whose caller inserted its own (digests, invitations), `sweep.sweep` is the beat's safety net.

- `send_some(settings, campaign_id)`: claim a batch (PostgreSQL: FOR UPDATE SKIP LOCKED with
  a lease; SQLite: the same conditional UPDATE, serialised by BEGIN IMMEDIATE), re-check each
  person just before their message (unsubscribed, paused, cancelled -> nothing goes), send the
  batch over one SMTP connection, commit each row as it is answered. A worker killed mid-batch
  leaves rows `sending` whose lease expires; they go back to the queue, so at most the one
  message in flight (answered 250 but not yet committed) can go twice.

Per-kind template context: `CONTEXT_EXTRAS[kind]` (listed below, not registered by imports) is
`fn(session, settings, campaign) -> (Person -> {name: url})` and adds per-recipient links (e.g.
the opportunity's "respond" link, available to templates as `links.respond`). A digest
delivery's `items` are read from digest_item joined to content_item for (campaign, contact),
newest first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from enum import Enum
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, text, update
from sqlmodel import Session

from crm.backoff import backoff as retry_delay
from crm.campaigns import lifecycle
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
from crm.campaigns.digest_extras import digest_extras
from crm.campaigns.invitations import invite_extras
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus, DigestItem
from crm.campaigns.ratelimit import Pacer, limiter_for
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.bounces import bounce
from crm.contacts.models import Contact
from crm.content.models import ContentItem
from crm.db import get_engine, is_postgres, session_scope, utcnow
from crm.events import service as events
from crm.mail import LANGUAGES, Outgoing, PermanentMailError, Sender, TransientMailError, make_sender
from crm.queue import PLAN_CAMPAIGN, SEND_CAMPAIGN

log = logging.getLogger(__name__)

PLAN_TASK = PLAN_CAMPAIGN
SEND_TASK = SEND_CAMPAIGN
MAX_ATTEMPTS = 8
SEND_TASKS_PER_CAMPAIGN = lifecycle.SEND_TASKS_PER_CAMPAIGN
PENDING = (DeliveryStatus.queued, DeliveryStatus.sending)

ContextExtras = Callable[[Session, Settings, Campaign], ExtrasFn]
# Per-kind additions to each recipient's template context, listed here rather than registered by
# whichever module happens to be imported first.
CONTEXT_EXTRAS: dict[str, ContextExtras] = {
    CampaignKind.digest: digest_extras,
    CampaignKind.opportunity: invite_extras,
}


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
    """2 s doubling up to an hour (crm.backoff: full jitter); kept in next_attempt_at, not the broker."""
    return retry_delay(attempts, base=2.0)


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
        bounce(session, person.contact_id, "bounced")
        summary.bounced += 1
    else:
        _mark(session, person.delivery_id, status=DeliveryStatus.failed, error=error)
        summary.failed += 1




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


def _retry_later(session: Session, person: Person, exc: TransientMailError, summary: SendSummary) -> None:
    attempts = session.scalar(select(Delivery.attempts).where(Delivery.id == person.delivery_id)) or 1
    give_up = attempts >= MAX_ATTEMPTS
    _mark(session, person.delivery_id, status=DeliveryStatus.failed if give_up else DeliveryStatus.queued,
          next_attempt_at=utcnow() + backoff(attempts), error=str(exc)[:1000])
    session.commit()
    summary.failed += give_up
    summary.retry += not give_up


def _hand_back(session: Session, ids: list[int]) -> None:
    session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.sending)
                    .values(status=DeliveryStatus.queued, lease_until=None, next_attempt_at=utcnow() + backoff(1)))
    session.commit()


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
            _retry_later(session, person, exc, summary)
            if transient_in_a_row >= 3:
                # The relay is down or refusing: hand the rest back rather than hammer it.
                _hand_back(session, rest[1:])
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


def send_and_hand_over(settings: Settings, campaign_id: int) -> SendSummary:
    """The send task: send for a while, then (if rows remain) wake one fresh task to go on."""
    summary = send_some(settings, campaign_id)
    if summary.has_more:
        with session_scope(settings) as session:
            lifecycle.kick(session, campaign_id, 1)
    return summary


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Delivery counts per status in one GROUP BY."""
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                           .group_by(Delivery.status)).all()
    return {status: n for status, n in rows}
