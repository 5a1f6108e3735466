"""The one bounce rule: what a hard bounce or a complaint does to a person, whoever heard of it.

The relay's webhook (crm.campaigns.bounces), a campaign send (crm.campaigns.pipeline) and a
transactional send (crm.outbox) all call `bounce`: the address is suppressed, and the contact's
status says why, without overwriting a choice the person made (unsubscribed) or a stronger signal
(a complaint is never downgraded to a bounce).
"""

from __future__ import annotations

from sqlmodel import Session

from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus


def bounce(session: Session, contact_id: int, reason: str = "bounced") -> None:
    """Suppress the address and mark the contact; `reason` is `bounced` or `complained`."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.email_key is None:
        return
    contacts.suppress(session, contact.email_key, reason)
    status = ContactStatus.complained if reason == "complained" else ContactStatus.bounced
    if contact.status == ContactStatus.active or (status == ContactStatus.complained
                                                 and contact.status == ContactStatus.bounced):
        contacts.mark_status(session, contact_id, status)
