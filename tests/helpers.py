"""Small helpers shared by tests (no fixtures here)."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from typing import Any

from crm.config import Settings
from crm.db import session_scope
from crm.mail import MemorySender
from crm.outbox import service as outbox


def drain_outbox(settings: Settings) -> list[EmailMessage]:
    """Send every due outbox message through the MemorySender; return all messages sent so far."""
    from sqlalchemy import select

    from crm.outbox.models import OutboxMessage

    sender = MemorySender()
    with session_scope(settings) as s:
        ids = list(s.scalars(select(OutboxMessage.id).where(OutboxMessage.state == "pending")))
    for mid in ids:
        outbox.deliver(settings, sender, mid)
    return list(MemorySender.outbox)


def parse(raw: bytes | EmailMessage) -> EmailMessage:
    if isinstance(raw, EmailMessage):
        raw = raw.as_bytes()
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def links_in(msg: EmailMessage, base: str = "http") -> list[str]:
    return re.findall(rf"{re.escape(base)}[^\s\"'<>]+", text_of(msg))


def link_path(msg: EmailMessage, kind: str) -> str:
    """The path of the first /<kind>/<token> link in the plain-text part."""
    for link in links_in(msg):
        m = re.search(rf"/{kind}/[A-Za-z0-9_\-.]+", link)
        if m:
            return m.group(0)
    raise AssertionError(f"no /{kind}/ link in:\n{text_of(msg)}")


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if str(m["To"]).lower() == address.lower()]


def newsletter_body(**overrides: Any) -> dict[str, Any]:
    body = {"email": "ana@example.org", "first_name": "Ana", "interests": ["caregiving"], "consent": True}
    body.update(overrides)
    return body


def volunteer_body(**overrides: Any) -> dict[str, Any]:
    body = {"email": "vic@example.org", "first_name": "Vic", "last_name": "Ray", "postal_code": "30301",
            "areas": ["transport-to-treatment"], "availability": ["weekends"]}
    body.update(overrides)
    return body


def donation_body(**overrides: Any) -> dict[str, Any]:
    body = {"email": "di@example.org", "first_name": "Di", "last_name": "Ho", "inquiry_type": "one-time"}
    body.update(overrides)
    return body
