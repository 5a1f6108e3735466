"""Content items for digests: create, read, change, delete, list; topics are interest keys."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, exists, select
from sqlmodel import Session

from crm.bodies import present
from crm.contacts import service as contacts
from crm.content.models import ContentItem, ContentTopic
from crm.content.schemas import ContentItemCreate, ContentItemPatch
from crm.db import insert_ignore, keyset_page, utcnow
from crm.errors import Invalid, NotFound
from crm.mail import LANGUAGES

FIELDS = ("title", "url", "summary", "topics", "language", "published_at", "revised_at")


def _datetime(value: Any, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid.field(name, "must be a date (YYYY-MM-DD) or an ISO 8601 date-time, or null")
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid.field(name, "must be a date (YYYY-MM-DD) or an ISO 8601 date-time, or null") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _url(value: Any) -> str:
    url = contacts.clean_text(value, "url", max_length=2000)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise Invalid.field("url", "must be an absolute http:// or https:// address")
    return url


def parse_fields(session: Session, data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Check the meaning of a POST (partial=False) or PATCH body's fields; every bad field is named at once.

    The schema (crm/content/schemas.py) has already refused unknown fields and wrong JSON types.
    """
    errors: dict[str, str] = {}
    if not partial:
        for name in ("title", "url"):
            if data.get(name) in (None, ""):
                errors[name] = "is required"
    out: dict[str, Any] = {}
    for name in FIELDS:
        if name not in data or name in errors:
            continue
        value = data[name]
        try:
            if name == "title":
                out[name] = contacts.clean_text(value, name, max_length=300)
                if not out[name]:
                    raise Invalid.field(name, "must not be empty")
            elif name == "url":
                out[name] = _url(value)
            elif name == "summary":
                out[name] = contacts.clean_text(value, name, max_length=5000, single_line=False)
            elif name == "topics":
                out[name] = contacts.validate_interests(session, value, "topics")
            elif name == "language":
                if value not in LANGUAGES:
                    raise Invalid.field(name, f"unknown language {value!r}; expected one of {', '.join(LANGUAGES)}")
                out[name] = str(value)
            else:
                out[name] = _datetime(value, name)
        except Invalid as exc:
            errors.update(exc.fields)
    if errors:
        raise Invalid("invalid content item: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


def get_item(session: Session, item_id: int) -> ContentItem:
    item = session.get(ContentItem, item_id)
    if item is None:
        raise NotFound(f"no content item {item_id}")
    return item


def topics_of(session: Session, item_id: int) -> list[str]:
    return sorted(session.scalars(select(ContentTopic.interest_key).where(ContentTopic.content_id == item_id)))


def _set_topics(session: Session, item_id: int, topics: list[str]) -> None:
    session.execute(delete(ContentTopic).where(ContentTopic.content_id == item_id,
                                               ContentTopic.interest_key.not_in(topics)))
    insert_ignore(session, ContentTopic, [{"content_id": item_id, "interest_key": t} for t in topics])


def create_item(session: Session, data: ContentItemCreate | dict[str, Any]) -> ContentItem:
    fields = parse_fields(session, present(data), partial=False)
    topics = fields.pop("topics", [])
    now = utcnow()
    # Staff adding an article expect it in the next digest; an explicit null keeps it a draft.
    fields.setdefault("published_at", now)
    item = ContentItem(**fields, created_at=now, updated_at=now)
    session.add(item)
    session.flush()
    assert item.id is not None
    _set_topics(session, item.id, topics)
    return item


def update_item(session: Session, item_id: int, data: ContentItemPatch | dict[str, Any]) -> ContentItem:
    item = get_item(session, item_id)
    fields = parse_fields(session, present(data), partial=True)
    if "topics" in fields:
        _set_topics(session, item_id, fields.pop("topics"))
    for key, value in fields.items():
        setattr(item, key, value)
    item.updated_at = utcnow()
    session.add(item)
    session.flush()
    return item


def delete_item(session: Session, item_id: int) -> None:
    """Digest ledger rows keep the bare id, so what was sent stays countable after the item goes."""
    item = get_item(session, item_id)
    session.execute(delete(ContentTopic).where(ContentTopic.content_id == item_id))
    session.delete(item)
    session.flush()


def list_items(session: Session, topic: str | None, language: str | None, after_id: int | None,
               limit: int) -> tuple[list[ContentItem], bool]:
    """Newest first by id (keyset paging); returns (page, has_more)."""
    if topic is not None:
        contacts.validate_interests(session, [topic], "topic")
    if language is not None and language not in LANGUAGES:
        raise Invalid.field("language", f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    stmt = select(ContentItem)
    if topic:
        stmt = stmt.where(exists().where(ContentTopic.content_id == ContentItem.id, ContentTopic.interest_key == topic))
    if language:
        stmt = stmt.where(ContentItem.language == language)
    return keyset_page(session, stmt, ContentItem.id, after_id, limit)
