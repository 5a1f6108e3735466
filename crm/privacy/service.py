"""Data-subject access and erasure across every domain: each domain exports and forgets its own rows.

This package stands on the top floor so no domain needs to know the others: each offers
`export_rows(session, contact_id) -> {section: rows}` and `forget(session, contact_id)` in its
`privacy` module, and the list below is the whole of what "everything held about a person" means.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from crm.campaigns import privacy as campaigns
from crm.contacts import privacy as contacts
from crm.contacts.staff_service import get_contact
from crm.db import utcnow
from crm.donations import privacy as donations
from crm.events import privacy as events
from crm.events import service as event_log
from crm.forms import privacy as forms
from crm.journeys import privacy as journeys
from crm.outbox import privacy as outbox
from crm.staff.service import audit
from crm.volunteers import privacy as volunteers

# Forgetting order: contacts last, since the outbox finds staff notices by the address it still holds.
DOMAINS = (outbox, forms, donations, volunteers, journeys, campaigns, events, contacts)


def export(session: Session, contact_id: int, staff_email: str) -> dict[str, Any]:
    """Everything held about one person, as JSON-ready data (SPEC 5: data-subject access); audited."""
    get_contact(session, contact_id)
    out: dict[str, Any] = {}
    for domain in (contacts, campaigns, journeys, forms, volunteers, donations, outbox):
        out.update(domain.export_rows(session, contact_id))
    audit(session, staff_email, "contact.export", f"contact:{contact_id}", rows=1)
    return {**out, "exported_at": utcnow().isoformat()}


def erase(session: Session, contact_id: int, staff_email: str) -> None:
    """Forget a person everywhere; the suppression hash stays so no one mails them again."""
    get_contact(session, contact_id)
    for domain in DOMAINS:
        domain.forget(session, contact_id)
    event_log.record(session, "contact.erased", contact_id, email=None)
    audit(session, staff_email, "contact.erase", f"contact:{contact_id}", rows=1)
    session.flush()
