"""Consent events: who agreed to (or withdrew from) what, where, and under which wording.

Every event names where the action came from (ConsentSource) and, for a form, the hash of the
wording the person saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from crm.contacts.models import ConsentEvent
from crm.db import utcnow


@dataclass(frozen=True)
class ConsentSource:
    """Where a consent-relevant action came from: stored on every consent event."""

    source: str
    source_url: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    staff_email: str | None = None


def record_consent(
    session: Session,
    contact_id: int | None,
    action: str,
    origin: ConsentSource,
    *,
    list_key: str | None = None,
    detail: dict[str, Any] | None = None,
    consent_version: str | None = None,
    consent_text: str | None = None,
) -> ConsentEvent:
    event = ConsentEvent(**_consent_row(contact_id, action, origin, list_key, detail, consent_version, consent_text))
    session.add(event)
    return event


def insert_consent(
    session: Session,
    contact_id: int | None,
    action: str,
    origin: ConsentSource,
    *,
    list_key: str | None = None,
    detail: dict[str, Any] | None = None,
    consent_version: str | None = None,
    consent_text: str | None = None,
) -> None:
    """record_consent as one immediate Core INSERT, for hot paths that never read the event back."""
    session.execute(_CONSENT_INSERT,
                    _consent_row(contact_id, action, origin, list_key, detail, consent_version, consent_text))


_CONSENT_INSERT = insert(ConsentEvent.__table__)  # type: ignore[attr-defined]


def consent_columns(origin: ConsentSource, consent_version: str | None, consent_text: str | None) -> dict[str, Any]:
    """The columns a consent event takes from its origin and text, as insert_consent stores them
    (for callers that write the row in their own statement)."""
    return _consent_row(None, "", origin, None, None, consent_version, consent_text)


def _consent_row(contact_id: int | None, action: str, origin: ConsentSource, list_key: str | None,
                 detail: dict[str, Any] | None, consent_version: str | None, consent_text: str | None
                 ) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "action": action,
        "list": list_key,
        "detail": detail or {},
        "source": origin.source,
        "source_url": (origin.source_url or None) and origin.source_url[:2000],
        "client_ip": origin.client_ip,
        "user_agent": (origin.user_agent or None) and origin.user_agent[:500],
        "consent_version": consent_version,
        "consent_text_hash": _text_hash(consent_text) if consent_text else None,
        "staff_email": origin.staff_email,
        "created_at": utcnow(),
    }


@lru_cache(maxsize=64)
def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
