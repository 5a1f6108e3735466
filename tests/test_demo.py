"""`crm demo` loads articles, contacts and volunteers, and running it twice adds nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from crm import demo
from crm.contacts.models import ConsentEvent, Contact
from crm.content.models import ContentItem
from crm.db import session_scope
from crm.volunteers.models import Volunteer


def test_demo_is_idempotent(settings: Any) -> None:
    def counts() -> tuple[int, ...]:
        with session_scope(settings) as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) or 0
                         for t in (ContentItem, Contact, Volunteer, ConsentEvent))

    with session_scope(settings) as s:
        assert demo.load(s)["articles_added"] == len(demo.ARTICLES)
    first = counts()
    assert first[:3] == (len(demo.ARTICLES), len(demo.PEOPLE) + len(demo.VOLUNTEERS), len(demo.VOLUNTEERS))
    with session_scope(settings) as s:
        assert demo.load(s)["articles_added"] == 0
    assert counts() == first
    with session_scope(settings) as s:
        titles = set(s.scalars(select(ContentItem.title)))
    assert "Immunomodulators and Their Side Effects" in titles and "Questions to Ask Your Doctor" in titles
