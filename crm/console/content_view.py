"""What the Content pages show and take: content-item forms, template lists and their use by campaigns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignState
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactPublic, contacts_public
from crm.contacts.search import ContactFilters, search
from crm.content.models import ContentItem

LANGUAGES = {"en": "English", "es": "Spanish"}
OPEN_STATES = (CampaignState.draft, CampaignState.scheduled, CampaignState.sending, CampaignState.paused)


def item_fields(session: Session, form: dict[str, str], item: ContentItem | None) -> dict[str, Any]:
    """The content service's body from the form; a published date left as it was keeps its time of day."""
    topics = sorted(name[len("topic."):] for name, value in form.items() if name.startswith("topic.") and value)
    out: dict[str, Any] = {"title": form.get("title", ""), "url": form.get("url", ""),
                           "summary": form.get("summary", ""), "topics": topics,
                           "language": form.get("language", "en")}
    for name in ("published_at", "revised_at"):
        raw = form.get(name, "").strip()
        stored = getattr(item, name) if item is not None else None
        if stored is not None and raw == stored.date().isoformat():
            continue
        out[name] = raw or None
    return out


def item_form(item: ContentItem | None, topics: list[str]) -> dict[str, Any]:
    """The form's values for an item (a new one: published today, English)."""
    if item is None:
        return {"title": "", "url": "", "summary": "", "language": "en", "topics": [],
                "published_at": dt.date.today().isoformat(), "revised_at": ""}
    return {"title": item.title, "url": item.url, "summary": item.summary, "language": item.language,
            "topics": topics, "published_at": item.published_at.date().isoformat() if item.published_at else "",
            "revised_at": item.revised_at.date().isoformat() if item.revised_at else ""}


def posted_item_form(form: dict[str, str]) -> dict[str, Any]:
    return {**{k: form.get(k, "") for k in ("title", "url", "summary", "language", "published_at", "revised_at")},
            "topics": [name[len("topic."):] for name, value in form.items() if name.startswith("topic.") and value]}


def interest_labels(session: Session) -> dict[str, str]:
    return {i.key: i.label for i in contacts.list_interests(session)}


def campaigns_using(session: Session, key: str) -> list[tuple[int, str]]:
    """Campaigns not yet finished that would render with template `key`."""
    return [(int(i), str(n)) for i, n in session.execute(
        select(Campaign.id, Campaign.name).where(Campaign.template == key, Campaign.state.in_(OPEN_STATES))
        .order_by(Campaign.id))]


def find_contacts(session: Session, q: str) -> list[ContactPublic]:
    q = q.strip()[:200]
    if not q:
        return []
    rows, _ = search(session, ContactFilters(q=q), None, 8)
    return contacts_public(session, rows)


def day(iso: str | None) -> str:
    """An ISO date-time as people read it: 2 Dec 2026."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).strftime("%-d %b %Y")


def chosen_contact(session: Session, raw: str) -> list[ContactPublic]:
    """The contact a preview was rendered as, so the choice keeps its name after the page comes back."""
    contact = session.get(Contact, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if contact is None or contact.status == "erased":
        return []
    return contacts_public(session, [contact])
