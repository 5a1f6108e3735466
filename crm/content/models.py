"""Content items: the articles digests are made of, and the interest topics they cover."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class ContentItem(SQLModel, table=True):
    __tablename__ = "content_item"
    # The digest asks "published within the last period, in this language": newest first.
    __table_args__ = (Index("ix_content_item_language_published", "language", "published_at"),)
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    url: str = Field(max_length=2000)
    summary: str = Field(default="", max_length=5000)
    language: str = Field(default="en", max_length=5)
    published_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    revised_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContentTopic(SQLModel, table=True):
    """Keyed (content_id, interest_key) for an item's topics; the second index serves "items on my interests"."""

    __tablename__ = "content_topic"
    __table_args__ = (Index("ix_content_topic_interest_content", "interest_key", "content_id"),)
    content_id: int = Field(foreign_key="content_item.id", primary_key=True, ondelete="CASCADE")
    interest_key: str = Field(foreign_key="interest.key", primary_key=True, max_length=64)
