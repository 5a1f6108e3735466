"""Confirm, preference centre and unsubscribe: what a person does from a link in an email."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus, ListKey, SubscriptionState
from crm.db import utcnow
from crm.errors import NotFound
from crm.forms.service import RequestMeta
from crm.links import person_links
from crm.outbox import service as outbox
from crm.tokens import Purpose, TokenError, read_token


class LinkProblem(Exception):
    """The link cannot be used: malformed, tampered, expired, or its person is gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def contact_from_token(session: Session, settings: Settings, token: str, purpose: Purpose) -> Contact:
    try:
        claims = read_token(settings.resolved_secret("secret_key"), token, purpose)
    except TokenError as exc:
        raise LinkProblem(exc.reason) from None
    contact = session.get(Contact, claims.contact_id)
    if contact is None or contact.status == ContactStatus.erased or contact.email is None:
        raise LinkProblem("unknown")
    return contact


@dataclass(frozen=True)
class Confirmation:
    contact: Contact
    newly_confirmed: bool
    interests: list[str]
    frequency: str | None


def confirm(session: Session, settings: Settings, token: str, meta: RequestMeta) -> tuple[Confirmation, list[int]]:
    """Confirm the pending newsletter subscription. Idempotent; the welcome goes once per confirmation."""
    contact = contact_from_token(session, settings, token, "confirm")
    assert contact.id is not None and contact.email is not None and contact.email_key is not None
    sub = contacts.subscription(session, contact.id, ListKey.newsletter)
    if sub is None:
        raise NotFound("nothing to confirm")
    newly = False
    ids: list[int] = []
    if sub.state != SubscriptionState.confirmed:
        contacts.set_subscription_state(session, sub, SubscriptionState.confirmed)
        origin = contacts.ConsentSource("confirm-link", None, meta.client_ip, meta.user_agent)
        contacts.record_consent(session, contact.id, "confirm", origin, list_key=ListKey.newsletter,
                                consent_version=settings.consent_version)
        # A confirmed double opt-in is fresh consent: it lifts any earlier suppression.
        contacts.lift_suppression(session, contact.email_key, ["unsubscribed", "erased", "bounced", "complained"])
        if contact.status != ContactStatus.active:
            contact.status = ContactStatus.active
            session.add(contact)
        newly = True
    if sub.welcomed_at is None:
        sub.welcomed_at = utcnow()
        session.add(sub)
        ctx = {"contact": {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email,
                           "language": contact.language, "role": contact.role, "id": contact.id},
               "links": person_links(settings, contact.id)}
        mid = outbox.queue(session, "welcome", contact.email, ctx, contact_id=contact.id, language=contact.language)
        ids = [mid] if mid else []
    return Confirmation(contact, newly, contacts.interests_of(session, contact.id), sub.frequency), ids
