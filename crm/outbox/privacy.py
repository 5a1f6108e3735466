"""The outbox's share of erasure: unsent and sent messages to or about the person go."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from crm.contacts.models import Contact
from crm.outbox.models import OutboxMessage


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    return {}  # rendered from templates and what the other domains export: nothing of its own


def forget(session: Session, contact_id: int) -> None:
    session.execute(delete(OutboxMessage).where(OutboxMessage.contact_id == contact_id))
    contact = session.get(Contact, contact_id)
    if contact is not None and contact.email:
        # Staff notices about this person (volunteer, donation) carry their details but no contact_id.
        session.execute(delete(OutboxMessage).where(
            OutboxMessage.contact_id.is_(None),
            OutboxMessage.context["contact"]["email"].as_string() == contact.email))
