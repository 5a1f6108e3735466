"""A contact's profile page: the API's contact shape plus interest labels and the consent trail."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from crm.contacts import staff_service
from crm.contacts.models import ConsentEvent, Interest
from crm.contacts.schemas import ContactPublic, contact_public

CONSENT_SHOWN = 200  # newest first; a person with more has a data-subject export for the rest


@dataclass(frozen=True)
class Profile:
    contact: ContactPublic
    interest_labels: list[str]
    consent: list[ConsentEvent]


def load(session: Session, contact_id: int) -> Profile:
    contact = contact_public(session, staff_service.get_contact(session, contact_id))
    labels = dict(session.execute(select(Interest.key, Interest.label)).tuples().all())
    trail = list(session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                 .order_by(ConsentEvent.id.desc()).limit(CONSENT_SHOWN)))  # type: ignore[union-attr]
    return Profile(contact=contact, interest_labels=[labels.get(k, k) for k in contact.interests], consent=trail)
