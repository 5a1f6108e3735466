"""The event log's part of erasure: stored payloads lose the person's address."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from crm.events import service


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    # Events carry ids and what changed, nothing a person gave us beyond the address already exported.
    return {}


def forget(session: Session, contact_id: int) -> None:
    service.forget_contact(session, contact_id)
