"""What a digest's template sees of each item beyond the pipeline's fields: its topic and a localised date.

The pipeline adds these before each render (`CONTEXT_EXTRAS` in crm.campaigns.pipeline); digest
previews use the same lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.compose import Person
from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.contacts.models import Interest
from crm.content.models import ContentTopic
from crm.mail import LANGUAGES, wording

OTHER_TOPIC = {"en": "Other news", "es": "Otras noticias"}



@dataclass(frozen=True)
class Topic:
    key: str
    label: str
    label_es: str
    position: int

    def label_in(self, language: str) -> str:
        return (self.label_es or self.label) if language == "es" else self.label


class TopicLookup:
    """Each item's primary topic (first in the taxonomy's order), loaded lazily and kept per run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_item: dict[int, Topic | None] = {}
        # (item id, language) -> the fields enrich adds: a digest run asks for the same few items 100k times.
        self.fields: dict[tuple[int, str], dict[str, Any]] = {}

    def load(self, ids: Iterable[int]) -> None:
        missing = [i for i in set(ids) if i not in self.by_item]
        if not missing:
            return
        rows = self.session.execute(
            select(ContentTopic.content_id, Interest.key, Interest.label, Interest.label_es, Interest.position)
            .join(Interest, Interest.key == ContentTopic.interest_key)
            .where(ContentTopic.content_id.in_(missing))
            .order_by(ContentTopic.content_id, Interest.position, Interest.key)
        ).all()
        for content_id in missing:
            self.by_item[content_id] = None
        for content_id, key, label, label_es, position in rows:
            if self.by_item[content_id] is None:
                self.by_item[content_id] = Topic(key, label, label_es or "", position)

    def enrich(self, items: list[dict[str, Any]], language: str) -> None:
        """Add topic, topic_label and a localized date to each item dict, in place."""
        lang = language if language in LANGUAGES else "en"
        fields = self.fields
        if all((i.get("id"), lang) in fields for i in items):
            for item in items:
                item.update(fields[(item["id"], lang)])
            return
        self.load(int(i["id"]) for i in items if i.get("id") is not None)
        for item in items:
            topic = self.by_item.get(int(item["id"])) if item.get("id") is not None else None
            item["topic"] = topic.key if topic else ""
            item["topic_label"] = topic.label_in(lang) if topic else OTHER_TOPIC[lang]
            item["topic_position"] = topic.position if topic else 10_000
            item["date"] = format_date(item.get("published_at"), lang)
            if item.get("id") is not None:
                fields[(item["id"], lang)] = {k: item[k] for k in ("topic", "topic_label", "topic_position", "date")}


def format_date(value: Any, language: str) -> str:
    return wording.format_date(value, language)


def digest_extras(session: Session, settings: Settings, campaign: Campaign) -> Any:
    """The pipeline hands digests their items without topics: add them before each render."""
    lookup = TopicLookup(session)

    def extras(person: Person) -> dict[str, str]:
        if person.items:
            lookup.enrich(person.items, person.language)
        return {}

    return extras


