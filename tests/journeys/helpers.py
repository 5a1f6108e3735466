"""Shared by the journey tests: a small journey, one tick + send in-process, who got what."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crm.campaigns import pipeline
from crm.config import Settings
from crm.db import session_scope
from crm.journeys import service, stepping
from crm.journeys.models import JourneyCampaign
from crm.mail import MemorySender


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Welcome",
        "trigger": {"event": "subscription.confirmed", "list": "newsletter"},
        "steps": [
            {"wait": {"minutes": 0}, "subject": "One for {{ contact.first_name }}", "body_html": "<p>first</p>",
             "body_text": "first", "translations": {"es": {"subject": "Uno", "body_html": "<p>primero</p>",
                                                           "body_text": "primero"}}},
            {"wait": {"days": 2}, "subject": "Two", "body_html": "<p>second</p>", "body_text": "second"},
            {"wait": {"days": 3, "hours": 1}, "subject": "Three", "body_html": "<p>third</p>", "body_text": "third"},
        ],
    }
    base.update(over)
    return base


def make_active(settings: Settings, **over: Any) -> int:
    with session_scope(settings) as s:
        journey = service.create(s, settings, spec(**over), "editor@staff.example.org")
        s.flush()
        service.activate(s, settings, journey.id)
        return journey.id  # type: ignore[return-value]


def run(settings: Settings, now: dt.datetime | None = None) -> list[Any]:
    """One tick, then every journey campaign sent in this process; returns the messages that went."""
    before = len(MemorySender.outbox)
    stepping.tick(settings, now)
    with session_scope(settings) as s:
        ids = list(s.scalars(select(JourneyCampaign.campaign_id)))
    for cid in ids:
        pipeline.send_some(settings, cid, MemorySender())
    return MemorySender.outbox[before:]


def subjects(messages: list[Any], to: str | None = None) -> list[str]:
    return [str(m["Subject"]) for m in messages if to is None or str(m["To"]).strip("<>") == to]
