"""Confirm, preference centre and unsubscribe: what a person does from a link in an email.

Every change a person makes here writes a consent event (source `preferences` or
`one-click`) so the trail shows who asked for what, when and from where. Joining a list
again is never a flip of a flag: it starts a fresh double opt-in.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.consent import ConsentSource, record_consent
from crm.contacts.models import Contact, ContactStatus, Frequency, ListKey, SubscriptionState
from crm.db import utcnow
from crm.events import service as events
from crm.forms.service import NO_MAIL_REASONS, RequestMeta, start_newsletter_optin
from crm.links import SAMPLE_CONTACT_ID, person_links, url_for
from crm.outbox import service as outbox
from crm.preferences.changes import (  # noqa: F401 - the reading half of a change, used by the routes
    FREQUENCIES,
    LISTS,
    WANTED,
    PreferencesUpdate,
    parse_form,
    parse_json,
)
from crm.tokens import Purpose, TokenClaims, TokenError, read_token
from crm.volunteers import service as volunteers

FRESH_LINK_WINDOW = 600  # seconds: at most one fresh-link email per person per window, however often asked


class LinkProblem(Exception):
    """The link cannot be used: malformed, tampered, expired, its person is gone, or a test email's sample."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _claims(session: Session, settings: Settings, token: str, purpose: Purpose) -> tuple[TokenClaims, Contact]:
    try:
        claims = read_token(settings.verification_secrets(), token, purpose)
    except TokenError as exc:
        raise LinkProblem(exc.reason) from None
    if claims.contact_id == SAMPLE_CONTACT_ID:
        raise LinkProblem("sample")  # a genuine link from a test email: nobody's data to show or change
    contact = session.get(Contact, claims.contact_id)
    if contact is None or contact.status == ContactStatus.erased or contact.email is None:
        raise LinkProblem("unknown")
    return claims, contact


def contact_from_token(session: Session, settings: Settings, token: str, purpose: Purpose) -> Contact:
    return _claims(session, settings, token, purpose)[1]


def origin_of(source: str, meta: RequestMeta) -> ConsentSource:
    return ConsentSource(source, None, meta.client_ip, meta.user_agent)


# --- confirm ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    contact: Contact
    newly_confirmed: bool
    interests: list[str]
    frequency: str | None
    list_key: str = ListKey.newsletter


def confirm(session: Session, settings: Settings, token: str, meta: RequestMeta) -> tuple[Confirmation, list[int]]:
    """Confirm the pending subscription the link names (newsletter unless the token says another list).

    Idempotent; the welcome goes once per newsletter confirmation.
    """
    claims, contact = _claims(session, settings, token, "confirm")
    assert contact.id is not None and contact.email is not None and contact.email_key is not None
    list_key = claims.extra if claims.extra in LISTS else ListKey.newsletter
    sub = contacts.subscription(session, contact.id, list_key)
    if sub is None:
        raise LinkProblem("unknown")  # nothing to confirm: the subscription is gone
    if sub.state == SubscriptionState.unsubscribed:
        # They left after this link was sent: an old confirm link must not undo that.
        raise LinkProblem("superseded")
    newly = False
    ids: list[int] = []
    if sub.state != SubscriptionState.confirmed:
        contacts.set_subscription_state(session, sub, SubscriptionState.confirmed)
        record_consent(session, contact.id, "confirm", origin_of("confirm-link", meta), list_key=list_key,
                       consent_version=settings.consent_version)
        # A confirmed double opt-in is fresh consent: it lifts any earlier suppression.
        contacts.lift_suppression(session, contact.email_key, ["unsubscribed", "erased", "bounced", "complained",
                                                                 "manual"])
        if contact.status != ContactStatus.active:
            contact.status = ContactStatus.active
            session.add(contact)
        newly = True
    if list_key == ListKey.newsletter and sub.welcomed_at is None:
        sub.welcomed_at = utcnow()
        session.add(sub)
        ctx = {"contact": volunteers.person(contact), "links": person_links(settings, contact.id)}
        mid = outbox.queue(session, "welcome", contact.email, ctx, contact_id=contact.id, language=contact.language,
                           per_window=True)
        ids = [mid] if mid else []
    return Confirmation(contact, newly, contacts.interests_of(session, contact.id), sub.frequency, list_key), ids


# --- reading preferences ----------------------------------------------------------------------


def preferences_of(session: Session, contact: Contact) -> dict[str, Any]:
    """The JSON shape of GET /api/v1/preferences/{token}; PUT takes the same shape back."""
    assert contact.id is not None
    subs = contacts.subscriptions_of(session, contact.id)
    newsletter = subs.get(ListKey.newsletter)
    body: dict[str, Any] = {
        "email": contact.email,
        "first_name": contact.first_name,
        "language": contact.language,
        "status": contact.status,
        "interests": contacts.interests_of(session, contact.id),
        "frequency": (newsletter.frequency if newsletter else None) or Frequency.weekly.value,
        "lists": {key: subs[key].state for key in LISTS if key in subs},
    }
    vol = volunteers.for_contact(session, contact.id)
    if vol is not None:
        assert vol.id is not None
        body["volunteer"] = {"areas": volunteers.areas_of(session, vol.id),
                             "availability": volunteers.availability_of(session, vol.id),
                             "paused_until": vol.paused_until.isoformat() if vol.paused_until else None,
                             "shift_reminders": vol.shift_reminders}
    return body


# --- changing them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str  # interests, frequency, language, first_name, areas, availability, paused_until, list
    before: Any
    after: Any
    list_key: str | None = None


@dataclass
class SaveResult:
    changes: list[Change] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    check_inbox: list[str] = field(default_factory=list)  # lists whose confirmation email just went out


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def save(session: Session, settings: Settings, contact: Contact, update: PreferencesUpdate,
         origin: ConsentSource) -> SaveResult:
    """Apply a validated change; record a consent event per changed field and a volunteer event."""
    assert contact.id is not None and contact.email is not None
    result = SaveResult()
    cid = contact.id
    if update.first_name is not None and update.first_name != contact.first_name:
        result.changes.append(Change("first_name", contact.first_name, update.first_name))
        contact.first_name = update.first_name
    if update.language is not None and update.language != contact.language:
        result.changes.append(Change("language", contact.language, update.language))
        contact.language = update.language
    if update.interests is not None:
        before = contacts.interests_of(session, cid)
        if sorted(update.interests) != before:
            contacts.set_interests(session, cid, update.interests)
            result.changes.append(Change("interests", before, sorted(update.interests)))
    for change in result.changes:
        record_consent(session, cid, "preferences", origin, consent_version=settings.consent_version,
                       detail={"field": change.field, "from": change.before, "to": change.after})
    _save_lists(session, settings, contact, update, origin, result)
    sub = contacts.subscription(session, cid, ListKey.newsletter)
    if update.frequency is not None and sub is not None and sub.frequency != update.frequency:
        change = Change("frequency", sub.frequency, update.frequency)
        sub.frequency = update.frequency
        session.add(sub)
        record_consent(session, cid, "preferences", origin, list_key=ListKey.newsletter,
                       consent_version=settings.consent_version,
                       detail={"field": "frequency", "from": change.before, "to": change.after})
        result.changes.append(change)
    _save_volunteer(session, settings, contact, update, origin, result)
    if result.changes:
        contact.updated_at = utcnow()
        session.add(contact)
        events.record(session, "contact.updated", cid, changed=[c.field for c in result.changes], source="preferences")
    session.flush()
    return result


def _save_lists(session: Session, settings: Settings, contact: Contact, update: PreferencesUpdate,
                origin: ConsentSource, result: SaveResult) -> None:
    assert contact.id is not None and contact.email is not None
    subs = contacts.subscriptions_of(session, contact.id)
    for key, wanted in (update.lists or {}).items():
        sub = subs.get(key)
        state = sub.state if sub is not None else None
        if wanted and state in (None, SubscriptionState.unsubscribed):
            if key == ListKey.newsletter:
                ids = start_newsletter_optin(session, settings, contact, origin, frequency=update.frequency,
                                             interests=[])
            else:
                ids = _start_list_optin(session, settings, contact, key, origin)
            result.outbox_ids += ids
            if ids:
                result.check_inbox.append(key)
            result.changes.append(Change("list", state, SubscriptionState.pending.value, key))
        elif not wanted and sub is not None and state in WANTED:
            contacts.set_subscription_state(session, sub, SubscriptionState.unsubscribed)
            record_consent(session, contact.id, "unsubscribe", origin, list_key=key,
                           consent_version=settings.consent_version, detail={"from": state})
            result.changes.append(Change("list", state, SubscriptionState.unsubscribed.value, key))


def _start_list_optin(session: Session, settings: Settings, contact: Contact, list_key: str,
                      origin: ConsentSource) -> list[int]:
    """Double opt-in for a list other than the newsletter: pending plus a confirm link naming the list."""
    assert contact.id is not None and contact.email is not None and contact.email_key is not None
    sub = contacts.ensure_subscription(session, contact.id, list_key)
    contacts.set_subscription_state(session, sub, SubscriptionState.pending)
    record_consent(session, contact.id, "signup", origin, list_key=list_key,
                   consent_version=settings.consent_version)
    if contacts.suppression_reason(session, contact.email_key) in NO_MAIL_REASONS:
        return []
    links = {**person_links(settings, contact.id), "confirm": url_for(settings, contact.id, "confirm", extra=list_key)}
    ctx = {"contact": volunteers.person(contact), "links": links, "list_key": list_key, "topics": []}
    mid = outbox.queue(session, "confirm", contact.email, ctx,
                       contact_id=contact.id, language=contact.language, per_window=True)
    return [mid] if mid else []


def _save_volunteer(session: Session, settings: Settings, contact: Contact, update: PreferencesUpdate,
                    origin: ConsentSource, result: SaveResult) -> None:
    assert contact.id is not None
    if (update.areas is None and update.availability is None and not update.set_paused_until
            and update.shift_reminders is None):
        return
    vol = volunteers.for_contact(session, contact.id)
    if vol is None or vol.id is None:
        return
    changes: list[Change] = []
    if update.areas is not None:
        before = volunteers.areas_of(session, vol.id)
        if sorted(update.areas) != before:
            volunteers.set_areas(session, vol.id, update.areas)
            changes.append(Change("areas", before, sorted(update.areas)))
    if update.availability is not None:
        before = volunteers.availability_of(session, vol.id)
        if sorted(update.availability) != before:
            volunteers.set_availability(session, vol.id, update.availability)
            changes.append(Change("availability", before, sorted(update.availability)))
    if update.set_paused_until and update.paused_until != vol.paused_until:
        changes.append(Change("paused_until", vol.paused_until, update.paused_until))
        vol.paused_until = update.paused_until
    if update.shift_reminders is not None and update.shift_reminders != vol.shift_reminders:
        changes.append(Change("shift_reminders", vol.shift_reminders, update.shift_reminders))
        vol.shift_reminders = update.shift_reminders
    if not changes:
        return
    vol.updated_at = utcnow()
    session.add(vol)
    detail = {c.field: _json(c.after) for c in changes}
    # Staff see the volunteer's own changes in the pipeline history, not only in the consent trail.
    volunteers.record_event(session, vol.id, None, None, "self", "changed in the preference centre", detail)
    for c in changes:
        record_consent(session, contact.id, "preferences", origin, list_key=ListKey.volunteer_updates,
                       consent_version=settings.consent_version,
                       detail={"field": c.field, "from": _json(c.before), "to": _json(c.after)})
    result.changes += changes


def unsubscribe_everything(session: Session, settings: Settings, contact: Contact,
                           origin: ConsentSource) -> list[Change]:
    """Leave every list, mark the contact unsubscribed and suppress the address. Idempotent."""
    assert contact.id is not None and contact.email_key is not None
    changes: list[Change] = []
    for key, sub in sorted(contacts.subscriptions_of(session, contact.id).items()):
        before = sub.state
        if contacts.set_subscription_state(session, sub, SubscriptionState.unsubscribed):
            record_consent(session, contact.id, "unsubscribe", origin, list_key=key,
                           consent_version=settings.consent_version, detail={"from": before})
            changes.append(Change("list", before, SubscriptionState.unsubscribed.value, key))
    if contact.status == ContactStatus.active:
        # bounced/complained stay as they are: they say more than "unsubscribed" does.
        changes.append(Change("status", contact.status, ContactStatus.unsubscribed.value))
        contact.status = ContactStatus.unsubscribed
        contact.updated_at = utcnow()
        session.add(contact)
    contacts.suppress(session, contact.email_key, "unsubscribed")
    if changes:
        record_consent(session, contact.id, "unsubscribe", origin, consent_version=settings.consent_version,
                       detail={"scope": "everything", "lists": [c.list_key for c in changes if c.list_key]})
        vol = volunteers.for_contact(session, contact.id)
        if vol is not None and vol.id is not None:
            volunteers.record_event(session, vol.id, None, None, "self", "unsubscribed from all email",
                                    {"unsubscribed": True, "source": origin.source})
    session.flush()
    return changes


# --- fresh links ------------------------------------------------------------------------------


def send_fresh_link(session: Session, settings: Settings, raw_email: Any, *, now: float | None = None) -> list[int]:
    """Email fresh preferences and unsubscribe links to a known address; say nothing either way.

    Asking again within FRESH_LINK_WINDOW queues nothing, so the form cannot be used to
    flood someone's inbox.
    """
    address = contacts.normalize_email(raw_email if isinstance(raw_email, str) else "")
    contact = contacts.find_by_email(session, address)
    if contact is None or contact.id is None or contact.email is None or contact.status == ContactStatus.erased:
        return []
    if contacts.suppression_reason(session, address.key) in NO_MAIL_REASONS:
        return []
    bucket = int((now if now is not None else time.time()) // FRESH_LINK_WINDOW)
    ctx = {"contact": volunteers.person(contact), "links": person_links(settings, contact.id)}
    mid = outbox.queue(session, "fresh-link", contact.email, ctx, contact_id=contact.id, language=contact.language,
                       dedupe_key=f"fresh-link:{contact.id}:{bucket}")
    return [mid] if mid else []
