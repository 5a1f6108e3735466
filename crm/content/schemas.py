"""The staff API's content-item shapes, loaded a page at a time (one query for the page's topics)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import msgspec
from sqlalchemy import select
from sqlmodel import Session

from crm.contacts.models import Language
from crm.content.models import ContentItem, ContentTopic


class ContentItemCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/content. The service checks meaning: topics are known interest keys, the URL is http(s)."""

    title: str
    url: str
    summary: str = ""
    topics: list[str] = msgspec.field(default_factory=list)  # interest keys
    language: Language = Language.en
    # A date (YYYY-MM-DD) or an ISO 8601 date-time; absent: now (the next digest), null: a draft.
    published_at: str | None | msgspec.UnsetType = msgspec.UNSET
    revised_at: str | None = None


class ContentItemPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/content/{id}: only the fields present change; null clears a date."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    url: str | msgspec.UnsetType = msgspec.UNSET
    summary: str | msgspec.UnsetType = msgspec.UNSET
    topics: list[str] | msgspec.UnsetType = msgspec.UNSET
    language: Language | msgspec.UnsetType = msgspec.UNSET
    published_at: str | None | msgspec.UnsetType = msgspec.UNSET
    revised_at: str | None | msgspec.UnsetType = msgspec.UNSET


class ContentItemPublic(msgspec.Struct, kw_only=True):
    id: int
    title: str
    url: str
    summary: str
    topics: list[str]  # interest keys
    language: str
    published_at: str | None  # null: a draft, never in a digest
    revised_at: str | None
    created_at: str
    updated_at: str


class ContentPage(msgspec.Struct):
    items: list[ContentItemPublic]
    next_cursor: str | None


def items_public(session: Session, items: Sequence[ContentItem]) -> list[ContentItemPublic]:
    topics: dict[int, list[str]] = defaultdict(list)
    ids = [i.id for i in items]
    if ids:
        for cid, key in session.execute(select(ContentTopic.content_id, ContentTopic.interest_key)
                                        .where(ContentTopic.content_id.in_(ids))):
            topics[cid].append(key)
    return [_public(i, sorted(topics[i.id])) for i in items]  # type: ignore[index]


def item_public(session: Session, item: ContentItem) -> ContentItemPublic:
    return items_public(session, [item])[0]


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when else None


def _public(item: ContentItem, topics: list[str]) -> ContentItemPublic:
    assert item.id is not None
    return ContentItemPublic(id=item.id, title=item.title, url=item.url, summary=item.summary, topics=topics,
                             language=item.language, published_at=_iso(item.published_at),
                             revised_at=_iso(item.revised_at), created_at=item.created_at.isoformat(),
                             updated_at=item.updated_at.isoformat())
