"""The one mailing gate: who may receive mail on a list.

A person is mailable on a list when their contact is active, they are confirmed on that list and
their address is not suppressed. Two forms of the same test:

- `mailable(list_key)` reads the three tables themselves: the send-time re-check of each message
  and every single-person question use it, so nothing is mailed on the strength of a derived table;
- `mailable_audience(list_key)` reads `mailable_subscription`, which database triggers keep equal to
  it in the same transactions (migration 0015): audience counts and plans over many people use it,
  so they read one narrow index rather than every candidate's contact row.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, select
from sqlmodel import Session

from crm.contacts.models import (
    Contact,
    ContactStatus,
    MailableSubscription,
    Subscription,
    SubscriptionState,
    Suppression,
)


def mailable(list_key: str) -> ColumnElement[bool]:
    """Correlated EXISTS clauses on Contact, so any query over Contact can AND it in."""
    return and_(
        Contact.status == ContactStatus.active,
        exists().where(
            Subscription.contact_id == Contact.id,
            Subscription.list == list_key,
            Subscription.state == SubscriptionState.confirmed,
        ),
        ~exists().where(Suppression.email_hash == Contact.email_hash),
    )


def mailable_audience(list_key: str) -> ColumnElement[bool]:
    """The same answer as mailable(), from the maintained set: one correlated EXISTS on Contact."""
    return exists().where(MailableSubscription.contact_id == Contact.id, MailableSubscription.list == list_key)


def is_mailable(session: Session, contact_id: int, list_key: str) -> bool:
    return session.scalar(select(Contact.id).where(Contact.id == contact_id, mailable(list_key))) is not None
