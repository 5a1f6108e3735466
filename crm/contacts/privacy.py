"""What contacts holds about one person, for data-subject export and erasure (crm.privacy)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session

from crm.contacts import service as contacts
from crm.contacts.models import (
    ConsentEvent,
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Subscription,
    Suppression,
)
from crm.db import iso, utcnow


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    contact = session.get(Contact, contact_id)
    assert contact is not None
    profile = contacts.contact_dict(session, contact)
    profile.update(bereaved=contact.bereaved, soft_bounces=contact.soft_bounces,
                   last_engaged_at=iso(contact.last_engaged_at))
    subs = [{"list": s.list, "state": s.state, "frequency": s.frequency, "created_at": iso(s.created_at),
             "confirmed_at": iso(s.confirmed_at), "unsubscribed_at": iso(s.unsubscribed_at)}
            for s in contacts.subscriptions_of(session, contact_id).values()]
    consent = [{"action": e.action, "list": e.list, "source": e.source, "source_url": e.source_url,
                "client_ip": e.client_ip, "user_agent": e.user_agent, "consent_version": e.consent_version,
                "detail": e.detail, "staff_email": e.staff_email, "created_at": iso(e.created_at)}
               for e in session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                        .order_by(ConsentEvent.id))]
    return {"contact": profile, "subscriptions": subs, "consent_events": consent}


def forget(session: Session, contact_id: int) -> None:
    """Every personal value goes; the suppression row (a salted hash) stays so no one mails them again.

    The contact row itself stays (status `erased`, all personal fields empty, no hash either: the
    suppression row is enough, and a hash left here would let anyone who guesses the address
    re-link the erased row) so delivery rows, and with them every campaign's statistics, still count it.
    """
    contact = session.get(Contact, contact_id)
    assert contact is not None
    if contact.email_key:
        contacts.suppress(session, contact.email_key, "erased")
        # The suppression list shows addresses to staff; an erased one keeps only its hash.
        session.execute(update(Suppression).where(Suppression.email_hash == contacts.email_hash(session, contact.email_key))
                        .values(email=None, note=None))
    session.execute(delete(ContactInterest).where(ContactInterest.contact_id == contact_id))
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    session.execute(delete(Subscription).where(Subscription.contact_id == contact_id))
    # The trail keeps what happened and when (proof we acted on consent), not who or from where.
    session.execute(update(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                    .values(detail={}, source_url=None, client_ip=None, user_agent=None))
    now = utcnow()
    contact.email = None
    contact.email_key = None
    contact.email_hash = None
    contact.first_name = contact.last_name = contact.phone = contact.postal_code = ""
    contact.role = None
    contact.bereaved = False
    contact.status = ContactStatus.erased
    contact.last_engaged_at = None
    contact.erased_at = contact.updated_at = now
    session.add(contact)
