"""Personal content digests: plan a run in SQL, hand it to the sending pipeline, preview, stats.

A run is one `Campaign(kind="digest")`. Planning is three set statements in ONE transaction:

1. INSERT INTO digest_item ... SELECT: for every due, mailable, unpaused newsletter contact, the
   items published within the last period whose topics meet their interests, never sent to them
   (not in digest_item), in their language or English when none is in theirs, newest first, at
   most 8 (row_number() OVER (PARTITION BY contact ...)).
2. INSERT INTO delivery ... SELECT DISTINCT contact_id FROM digest_item WHERE campaign_id = run:
   a contact with nothing new gets no row and so no email.
3. UPDATE subscription SET last_digest_at = now for exactly those contacts.

`last_digest_at` moves on plan, in the same transaction as the ledger and the deliveries:
a crash before the commit leaves nothing (a rerun plans everyone), a crash after it leaves
queued deliveries that the pipeline's sweep sends, and a rerun finds those contacts not due
(and their items in the ledger), so nobody is mailed twice and nobody is missed.
Two runs at once are serialised (PostgreSQL: an advisory lock per frequency; SQLite: the
engine's BEGIN IMMEDIATE), so the second sees the first's commit.

Pause: a contact whose volunteer profile is paused (`paused_until` today or later) gets no
digest until that date passes, whatever list the digest is on; their `last_digest_at` is left
alone, so they are due at the first run after the pause.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.campaigns import lifecycle
from crm.campaigns import service as campaigns
from crm.campaigns.compose import Links, load_compiled
from crm.campaigns.digest_extras import TopicLookup
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus, DigestItem
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import (
    Contact,
    ContactInterest,
    Frequency,
    ListKey,
    Subscription,
    SubscriptionState,
)
from crm.content.models import ContentItem, ContentTopic
from crm.db import UTCDateTime, is_postgres, today, utcnow
from crm.errors import Invalid, NotFound
from crm.mail import LANGUAGES, base_context
from crm.volunteers.models import Volunteer

MAX_ITEMS = 8
PERIODS = {Frequency.weekly.value: dt.timedelta(days=7), Frequency.monthly.value: dt.timedelta(days=31)}
# A contact is due when the last digest is at least a period ago, less this slack: the beat fires a
# few seconds "early" relative to last week's plan, and calendar months are 28-31 days long, so
# without it weekly readers would get a digest every other week and monthly ones would skip March.
DUE_SLACK = {Frequency.weekly.value: dt.timedelta(hours=12), Frequency.monthly.value: dt.timedelta(days=3, hours=12)}
DEFAULT_FREQUENCY = Frequency.weekly.value  # SPEC 3: weekly unless chosen
NEWSLETTER = ListKey.newsletter.value
TEMPLATE = "digest"
SUBJECTS = {
    ("weekly", "en"): "New this week on the topics you chose",
    ("weekly", "es"): "Novedades de esta semana sobre los temas que eligió",
    ("monthly", "en"): "New this month on the topics you chose",
    ("monthly", "es"): "Novedades de este mes sobre los temas que eligió",
}
def parse_frequency(value: Any) -> str:
    if not isinstance(value, str) or value not in PERIODS:
        raise Invalid.field("frequency", f"must be one of {', '.join(PERIODS)}")
    return str(value)


def run_body(data: Any) -> str:
    """The POST body `{"frequency": "weekly"}`; every other field is refused by name."""
    if not isinstance(data, dict):
        raise Invalid.field("body", 'must be a JSON object like {"frequency": "weekly"}')
    extra = sorted(set(data) - {"frequency"})
    if extra:
        raise Invalid(f"unknown field {extra[0]}", fields={k: "unknown field; expected frequency" for k in extra})
    return parse_frequency(data.get("frequency"))


# --- the audience and its items, as SQL -----------------------------------------------------------


def _audience(frequency: str, now: dt.datetime, today: dt.date, *, contact_id: int | None = None,
              due_only: bool = True) -> Any:
    """Confirmed newsletter contacts on this frequency, due, through the gate, not paused (as of `today`)."""
    sub = aliased(Subscription)  # the gate's own EXISTS on subscription must not correlate to this join
    cutoff = now - (PERIODS[frequency] - DUE_SLACK[frequency])
    conditions: list[Any] = [
        sub.state == SubscriptionState.confirmed,
        func.coalesce(sub.frequency, DEFAULT_FREQUENCY) == frequency,
        contacts.mailable(NEWSLETTER),
        ~exists().where(Volunteer.contact_id == Contact.id, Volunteer.paused_until >= today),
    ]
    if due_only:
        conditions.append(or_(sub.last_digest_at.is_(None), sub.last_digest_at <= cutoff))
    if contact_id is not None:
        conditions.append(Contact.id == contact_id)
    return (
        select(Contact.id.label("contact_id"), Contact.language.label("language"),
               exists().where(ContactInterest.contact_id == Contact.id).label("has_interests"))
        .join(sub, and_(sub.contact_id == Contact.id, sub.list == NEWSLETTER))
        .where(*conditions)
    )


def _chosen(audience: Any, frequency: str, now: dt.datetime) -> Any:
    """(contact_id, content_id) rows: each audience member's next items, at most MAX_ITEMS."""
    due = audience.cte("due")
    item = ContentItem
    window = and_(item.published_at > now - PERIODS[frequency], item.published_at <= now,
                  or_(item.language == due.c.language, item.language == "en"),
                  ~exists().where(DigestItem.contact_id == due.c.contact_id, DigestItem.content_id == item.id))
    cols = (due.c.contact_id.label("contact_id"), due.c.language.label("language"), item.id.label("content_id"),
            item.published_at.label("published_at"), item.language.label("item_language"))
    # Contacts with interests: items sharing a topic (DISTINCT: two shared topics are one item).
    topical = (select(*cols).select_from(due)
               .join(ContactInterest, ContactInterest.contact_id == due.c.contact_id)
               .join(ContentTopic, ContentTopic.interest_key == ContactInterest.interest_key)
               .join(item, item.id == ContentTopic.content_id)
               .where(window).distinct())
    # Contacts who chose no interest asked for nothing in particular: every item is theirs.
    anything = select(*cols).select_from(due).join(item, true()).where(due.c.has_interests == false(), window)
    pairs = union_all(topical, anything).subquery("pairs")
    own = case((pairs.c.item_language == pairs.c.language, 1), else_=0)
    langs = select(pairs.c.contact_id, pairs.c.content_id, pairs.c.published_at, own.label("own"),
                   func.max(own).over(partition_by=pairs.c.contact_id).label("has_own")).subquery("langs")
    ranked = select(
        langs.c.contact_id, langs.c.content_id,
        func.row_number().over(partition_by=langs.c.contact_id,
                               order_by=(langs.c.published_at.desc(), langs.c.content_id.desc())).label("rn"),
    ).where(or_(langs.c.own == 1, langs.c.has_own == 0)).subquery("ranked")
    return select(ranked.c.contact_id, ranked.c.content_id).where(ranked.c.rn <= MAX_ITEMS)


def _insert(session: Session, table: Any) -> Any:
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# --- a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestRun:
    run_id: int
    frequency: str
    recipients: int
    items: int
    planned: bool  # False: nobody was due with anything new (run_id is the window's earlier run, if any)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _lock(session: Session, frequency: str) -> None:
    """Serialise runs of one frequency; SQLite's BEGIN IMMEDIATE already serialises every writer."""
    if is_postgres(session):
        key = int.from_bytes(hashlib.sha256(f"crm-digest:{frequency}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        # The per-contact ranking sorts about ten rows per reader: keep it in memory, not on disk.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        # The planner's row estimates for the gate are far off; at 100k readers they cross JIT's
        # threshold and compiling costs more than the statements it would speed up.
        session.execute(text("SET LOCAL jit = off"))


def local_date(settings: Settings, now: dt.datetime) -> dt.date:
    """The charity's calendar day: names runs, and ends pauses (a date the person picked)."""
    return today(settings, now)


def run_name(settings: Settings, frequency: str, now: dt.datetime) -> str:
    return f"{frequency.capitalize()} digest {local_date(settings, now).isoformat()}"


def plan_run(session: Session, settings: Settings, frequency: str, *, now: dt.datetime | None = None,
             actor: str | None = None) -> DigestRun:
    """Plan the digests due now and start sending them once the caller's transaction commits."""
    frequency = parse_frequency(frequency)
    now = now or utcnow()
    _lock(session, frequency)
    campaign = _new_run(session, settings, frequency, now, actor)
    run_id = campaign.id
    assert run_id is not None
    recipients, items = _fill_run(session, settings, run_id, frequency, now)
    if recipients:
        lifecycle.start_sending(session, run_id)
        return DigestRun(run_id, frequency, recipients, items, True)
    return _empty_run(session, campaign, frequency, now)


def _new_run(session: Session, settings: Settings, frequency: str, now: dt.datetime, actor: str | None
             ) -> Campaign:
    campaign = Campaign(
        kind=CampaignKind.digest, frequency=frequency, name=run_name(settings, frequency, now),
        subject=SUBJECTS[(frequency, "en")], list=NEWSLETTER, template=TEMPLATE,
        translations={lang: {"subject": SUBJECTS[(frequency, lang)]} for lang in LANGUAGES if lang != "en"},
        created_by=actor, created_at=now, updated_at=now,
    )
    session.add(campaign)
    session.flush()
    return campaign


def _fill_run(session: Session, settings: Settings, run_id: int, frequency: str, now: dt.datetime
              ) -> tuple[int, int]:
    """The run's ledger of items, one delivery per reader, their last_digest_at; (recipients, items)."""
    chosen = _chosen(_audience(frequency, now, local_date(settings, now)), frequency, now).subquery("chosen")
    session.execute(
        _insert(session, DigestItem.__table__).from_select(
            ["campaign_id", "contact_id", "content_id", "created_at"],
            select(literal(run_id), chosen.c.contact_id, chosen.c.content_id, literal(now, UTCDateTime))
            .where(true()),  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
        ).on_conflict_do_nothing(index_elements=["contact_id", "content_id"])
    )
    if is_postgres(session):
        # Half a million fresh ledger rows leave the planner's statistics behind: the sender's per-batch
        # "these 500 people's items" read then scanned the whole run for every batch (58 ms each at
        # 100k readers) instead of using (campaign_id, contact_id). ANALYZE counts our own rows (~50 ms).
        session.execute(text("ANALYZE digest_item"))
    session.execute(
        _insert(session, Delivery.__table__).from_select(
            ["campaign_id", "contact_id", "status", "attempts"],
            select(literal(run_id), DigestItem.contact_id, literal(DeliveryStatus.queued.value), literal(0))
            .where(DigestItem.campaign_id == run_id).distinct(),
        ).on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    )
    session.execute(
        update(Subscription)
        .where(Subscription.list == NEWSLETTER,
               Subscription.contact_id.in_(select(Delivery.contact_id).where(Delivery.campaign_id == run_id)))
        .values(last_digest_at=now)
    )
    recipients = session.scalar(select(func.count()).where(Delivery.campaign_id == run_id)) or 0
    items = session.scalar(select(func.count()).where(DigestItem.campaign_id == run_id)) or 0
    return recipients, items


def _empty_run(session: Session, campaign: Campaign, frequency: str, now: dt.datetime) -> DigestRun:
    """A run that found nothing to send: the earlier run of this due window if there is one, else itself."""
    run_id = campaign.id
    assert run_id is not None
    earlier = session.scalar(
        select(Campaign.id).where(Campaign.kind == CampaignKind.digest, Campaign.frequency == frequency,
                                  Campaign.id != run_id,
                                  Campaign.created_at > now - (PERIODS[frequency] - DUE_SLACK[frequency]))
        .order_by(Campaign.id.desc()).limit(1))
    if earlier is not None:
        # Same due window, nothing new: answer with the run that already covers it, keep no empty twin.
        session.execute(delete(Campaign).where(Campaign.id == run_id))
        return DigestRun(earlier, frequency, 0, 0, False)
    # Nothing to send and no earlier run: keep the run as a record that it looked (stats all zero).
    campaign.state = CampaignState.sent
    campaign.planned_at = campaign.started_at = campaign.finished_at = now
    session.add(campaign)
    session.flush()
    return DigestRun(run_id, frequency, 0, 0, False)


# --- stats ------------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> Campaign:
    run = session.get(Campaign, run_id)
    if run is None or run.kind != CampaignKind.digest:
        raise NotFound(f"no digest run {run_id}")
    return run


def stats(session: Session, run_id: int) -> dict[str, Any]:
    run = get_run(session, run_id)
    items = session.scalar(select(func.count()).where(DigestItem.campaign_id == run_id)) or 0
    return {"run_id": run_id, "frequency": run.frequency, "state": run.state,
            **campaigns.stats(session, run_id), "items": int(items)}




# --- preview ----------------------------------------------------------------------------------


def _item_dict(row: ContentItem) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "url": row.url, "summary": row.summary, "language": row.language,
            "published_at": row.published_at.isoformat() if row.published_at else None,
            "revised_at": row.revised_at.isoformat() if row.revised_at else None}


def preview(session: Session, settings: Settings, contact_id: int, *, now: dt.datetime | None = None
            ) -> dict[str, Any]:
    """What this contact would get if their digest went now; reads only, never touches the ledger."""
    now = now or utcnow()
    contact = session.get(Contact, contact_id)
    if contact is None or contact.email is None:
        raise NotFound(f"no contact {contact_id}")
    sub = contacts.subscription(session, contact_id, NEWSLETTER)
    chosen_frequency = (sub.frequency if sub else None) or DEFAULT_FREQUENCY
    frequency = chosen_frequency if chosen_frequency in PERIODS else DEFAULT_FREQUENCY
    today = local_date(settings, now)
    eligible = session.scalar(select(_audience(frequency, now, today, contact_id=contact_id, due_only=False).exists()))
    due = bool(session.scalar(select(_audience(frequency, now, today, contact_id=contact_id).exists())))
    # Items are computed as if the contact were due and eligible, so staff see the content either way.
    audience = (select(Contact.id.label("contact_id"), Contact.language.label("language"),
                       exists().where(ContactInterest.contact_id == Contact.id).label("has_interests"))
                .where(Contact.id == contact_id))
    chosen = _chosen(audience, frequency, now).subquery("chosen")
    rows = session.scalars(
        select(ContentItem).join(chosen, chosen.c.content_id == ContentItem.id)
        .order_by(ContentItem.published_at.desc(), ContentItem.id.desc())
    ).all()
    items = [_item_dict(r) for r in rows]
    language = contact.language if contact.language in LANGUAGES else "en"
    TopicLookup(session).enrich(items, language)
    rendered = render(session, settings, contact, frequency, items) if items else None
    return {
        "contact_id": contact_id,
        "frequency": chosen_frequency,
        "language": language,
        "eligible": bool(eligible),
        "due": due and chosen_frequency in PERIODS,
        "last_digest_at": sub.last_digest_at.isoformat() if sub and sub.last_digest_at else None,
        "would_send": bool(items) and due and bool(eligible) and chosen_frequency in PERIODS,
        "items": items,
        "subject": rendered["subject"] if rendered else None,
        "text": rendered["text"] if rendered else None,
        "html": rendered["html"] if rendered else None,
    }


def render(session: Session, settings: Settings, contact: Contact, frequency: str, items: list[dict[str, Any]]
           ) -> dict[str, str]:
    """The digest exactly as the templates render it, for a preview (no tracking, real links)."""
    assert contact.id is not None
    language = contact.language if contact.language in LANGUAGES else "en"
    subject = SUBJECTS[(frequency, language)]
    links = Links(settings).person(contact.id)
    ctx = {
        **base_context(settings, language),
        "contact": {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email or "",
                    "language": contact.language, "role": contact.role or ""},
        "campaign": {"name": run_name(settings, frequency, utcnow()), "subject": subject},
        "subject": subject, "body_html": "", "body_text": "",
        "items": items,
        "links": {k: v for k, v in links.items() if not k.startswith("_")},
        "extra": {},
    }
    out = load_compiled(settings, session, TEMPLATE, language).render(ctx)
    return {"subject": out.subject, "text": out.text, "html": out.html}
