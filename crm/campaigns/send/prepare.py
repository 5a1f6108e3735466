"""A campaign compiled once for sending (CampaignSender), and the people of a claimed batch.

Per-kind template context: `CONTEXT_EXTRAS[kind]` (listed below, not registered by imports) is
`fn(session, settings, campaign) -> (Person -> {name: url})` and adds per-recipient links (e.g.
the opportunity's "respond" link, available to templates as `links.respond`). A digest
delivery's `items` are read from digest_item joined to content_item for (campaign, contact),
newest first.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any

from sqlalchemy import case, select
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
from crm.campaigns.digest_extras import digest_extras
from crm.campaigns.invitations import invite_extras
from crm.campaigns.models import Campaign, CampaignKind, Delivery, DigestItem
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.content.models import ContentItem
from crm.mail import LANGUAGES, Outgoing

ContextExtras = Callable[[Session, Settings, Campaign], ExtrasFn]
# Per-kind additions to each recipient's template context, listed here rather than registered by
# whichever module happens to be imported first.
CONTEXT_EXTRAS: dict[str, ContextExtras] = {
    CampaignKind.digest: digest_extras,
    CampaignKind.opportunity: invite_extras,
}


def message_id_for(secret: str, domain: str, campaign_id: int, delivery_id: int) -> str:
    """Fixed per delivery before the first try: a resend after a crash carries the same Message-ID."""
    sig = hmac.new(secret.encode(), f"mid:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:12]
    return f"<c{campaign_id}.d{delivery_id}.{sig}@{domain}>"


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
        links = self.links.person(person.contact_id)  # signed once: the body's links and the headers share them
        rendered = self.renderer(person.language).render(person, links)
        mid = message_id_for(self.secret, self.domain, self.campaign_id, person.delivery_id)
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


def batch_people(session: Session, sender: CampaignSender, ids: list[int]) -> tuple[list[Person], list[int]]:
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


