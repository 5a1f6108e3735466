"""Form submissions of one person: exported as received; emptied on erasure (the row stays as a count)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.db import iso
from crm.forms.models import FormSubmission


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    return {"form_submissions": [
        {"form": s.form, "payload": s.payload, "client_ip": s.client_ip, "user_agent": s.user_agent,
         "received_at": iso(s.received_at)}
        for s in session.scalars(select(FormSubmission).where(FormSubmission.contact_id == contact_id)
                                 .order_by(FormSubmission.id))]}


def forget(session: Session, contact_id: int) -> None:
    session.execute(update(FormSubmission).where(FormSubmission.contact_id == contact_id)
                    .values(payload={}, client_ip=None, user_agent=None))
