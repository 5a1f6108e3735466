"""Staff operations on one contact: create, change, erase ("forget me"), export ("what do you hold?").

Staff may put a person on a list as `confirmed` (they consented elsewhere, e.g. a paper form at a walk):
that writes a consent event naming the staff member. They may NOT re-confirm an address the person
took off a list, nor one on the suppression list (unsubscribed everywhere, bounced, complained, erased):
that is a 409 naming why. Only the person can undo their own "no", through the public signup form.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session

from crm.campaigns.models import Campaign, Delivery
from crm.contacts import service as contacts
from crm.contacts.models import (
    ConsentEvent,
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Language,
    ListKey,
    Role,
    Subscription,
    SubscriptionState,
)
from crm.db import utcnow
from crm.donations.models import DonationInquiry
from crm.errors import Conflict, Invalid, NotFound
from crm.events import service as events
from crm.forms.models import FormSubmission
from crm.outbox.models import OutboxMessage
from crm.staff.service import audit
from crm.volunteers.models import Volunteer, VolunteerArea, VolunteerAvailability, VolunteerEvent

FIELDS = ("email", "first_name", "last_name", "phone", "postal_code", "language", "role", "interests", "tags",
          "subscriptions")
MAX_TAG = 64


def get_contact(session: Session, contact_id: int) -> Contact:
    """A contact staff may see: erased people are gone."""
    # Ids past INTEGER cannot exist (and would overflow the driver): simply not found.
    contact = session.get(Contact, contact_id) if 0 < contact_id < 2**31 else None
    if contact is None or contact.status == ContactStatus.erased:
        raise NotFound(f"no contact {contact_id}")
    return contact


def clean_tags(value: Any, field: str = "tags") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise Invalid.field(field, "must be a list of text tags")
    tags = [contacts.clean_text(t, field, max_length=MAX_TAG) for t in value]
    return list(dict.fromkeys(t for t in tags if t))


def check_choice(field: str, value: Any, allowed: list[str], *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if value not in allowed:
        raise Invalid.field(field, f"unknown {field} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _parse_subscriptions(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid.field("subscriptions", "must be an object {list: state}")
    lists, states = [k.value for k in ListKey], [s.value for s in SubscriptionState]
    for key, state in value.items():
        if key not in lists:
            raise Invalid.field("subscriptions", f"unknown list {key!r}; expected one of {', '.join(lists)}")
        if state not in states:
            raise Invalid.field("subscriptions", f"unknown state {state!r} for {key}; expected one of "
                                                 f"{', '.join(states)}")
    return dict(value)


def parse(session: Session, data: Any, *, partial: bool) -> dict[str, Any]:
    """Validate a create or patch body; every bad field is named at once."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {}
    for name in sorted(set(data) - set(FIELDS)):
        errors[name] = f"unknown field; expected any of {', '.join(FIELDS)}"
    if not partial and "email" not in data:
        errors["email"] = "an email address is required"
    out: dict[str, Any] = {}
    parsers: dict[str, Any] = {
        "email": lambda v: contacts.normalize_email(v),
        "first_name": lambda v: contacts.clean_text(v, "first_name", max_length=100),
        "last_name": lambda v: contacts.clean_text(v, "last_name", max_length=100),
        "phone": lambda v: contacts.clean_text(v, "phone", max_length=40),
        "postal_code": lambda v: contacts.clean_text(v, "postal_code", max_length=20),
        "language": lambda v: check_choice("language", v, [x.value for x in Language]),
        "role": lambda v: check_choice("role", v, [x.value for x in Role], nullable=True),
        "interests": lambda v: contacts.validate_interests(session, v),
        "tags": clean_tags,
        "subscriptions": _parse_subscriptions,
    }
    for name, fn in parsers.items():
        if name in data and name not in errors:
            try:
                out[name] = fn(data[name])
            except Invalid as exc:
                errors.update(exc.fields or {name: exc.message})
    if errors:
        raise Invalid("invalid contact: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


def _email_free(session: Session, email: contacts.NormalizedEmail, contact_id: int | None) -> None:
    other = contacts.find_by_email(session, email)
    if other is not None and other.id != contact_id:
        raise Conflict(f"another contact (id {other.id}) has the address {email.email}",
                       fields={"email": "another contact has this address"})


def _apply_subscriptions(session: Session, contact: Contact, wanted: dict[str, str], staff_email: str) -> None:
    assert contact.id is not None
    origin = contacts.ConsentSource(source="staff", staff_email=staff_email)
    current = contacts.subscriptions_of(session, contact.id)
    reason = contacts.suppression_reason(session, contact.email_key) if contact.email_key else None
    for list_key, state in wanted.items():
        sub = current.get(list_key)
        if state == SubscriptionState.confirmed and (sub is None or sub.state != SubscriptionState.confirmed):
            if reason is not None or contact.status != ContactStatus.active:
                why = reason or contact.status
                raise Conflict(f"{contact.email} is suppressed ({why}); staff cannot confirm it on {list_key}. "
                               "Only the person can sign up again, through the public form",
                               fields={"subscriptions": f"address is suppressed ({why})"})
            if sub is not None and sub.state == SubscriptionState.unsubscribed:
                raise Conflict(f"{contact.email} unsubscribed from {list_key}; staff cannot re-confirm it. "
                               "Only the person can sign up again, through the public form",
                               fields={"subscriptions": f"the person unsubscribed from {list_key}"})
        sub = sub or contacts.ensure_subscription(session, contact.id, list_key)
        if contacts.set_subscription_state(session, sub, state):
            action = {"confirmed": "staff-confirm", "unsubscribed": "staff-unsubscribe"}.get(state, "staff-pending")
            contacts.record_consent(session, contact.id, action, origin, list_key=list_key,
                                    detail={"state": state})


def _apply(session: Session, contact: Contact, fields: dict[str, Any], staff_email: str) -> None:
    assert contact.id is not None
    changed = False
    if "email" in fields:
        email: contacts.NormalizedEmail = fields["email"]
        _email_free(session, email, contact.id)
        if email.key != contact.email_key:
            contact.email, contact.email_key = email.email, email.key
            contact.email_hash = contacts.email_hash(session, email.key)
            changed = True
        elif email.email != contact.email:
            contact.email = email.email
            changed = True
    for name in ("first_name", "last_name", "phone", "postal_code", "language", "role"):
        if name in fields and getattr(contact, name) != fields[name]:
            setattr(contact, name, fields[name])
            changed = True
    if changed:
        contact.updated_at = utcnow()
        session.add(contact)
        session.flush()
    if "interests" in fields:
        contacts.set_interests(session, contact.id, fields["interests"])
    if "tags" in fields:
        contacts.set_tags(session, contact.id, fields["tags"])
    if "subscriptions" in fields:
        _apply_subscriptions(session, contact, fields["subscriptions"], staff_email)
    session.flush()


def create(session: Session, data: Any, staff_email: str) -> Contact:
    fields = parse(session, data, partial=False)
    email: contacts.NormalizedEmail = fields["email"]
    _email_free(session, email, None)
    if contacts.suppression_reason(session, email.key) == "erased":
        # The person asked to be forgotten: staff re-creating them would undo that silently.
        raise Conflict(f"{email.email} was erased at the person's request and cannot be added again by staff",
                       fields={"email": "this address was erased at the person's request"})
    contact, _ = contacts.upsert_contact(session, email)
    events.record(session, "contact.created", contact.id, source="staff")
    _apply(session, contact, fields, staff_email)
    return contact


def patch(session: Session, contact_id: int, data: Any, staff_email: str) -> Contact:
    contact = get_contact(session, contact_id)
    _apply(session, contact, parse(session, data, partial=True), staff_email)
    events.record(session, "contact.updated", contact_id, changed=list(data) if isinstance(data, dict) else [], source="staff")
    return contact


# --- erasure ----------------------------------------------------------------------------------


def erase(session: Session, contact_id: int, staff_email: str) -> None:
    """Forget a person: every personal value goes; the salted hash stays so no one mails them again.

    The contact row itself stays (status `erased`, all personal fields empty) so delivery rows, and
    with them every campaign's statistics, still count it.
    """
    contact = get_contact(session, contact_id)
    if contact.email_key:
        contacts.suppress(session, contact.email_key, "erased")
    now = utcnow()
    session.execute(delete(ContactInterest).where(ContactInterest.contact_id == contact_id))
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    session.execute(delete(Subscription).where(Subscription.contact_id == contact_id))
    session.execute(delete(OutboxMessage).where(OutboxMessage.contact_id == contact_id))
    if contact.email:
        # Staff notices about this person (volunteer, donation) carry their details but no contact_id.
        session.execute(delete(OutboxMessage).where(
            OutboxMessage.contact_id.is_(None),
            OutboxMessage.context["contact"]["email"].as_string() == contact.email))
    session.execute(update(FormSubmission).where(FormSubmission.contact_id == contact_id)
                    .values(payload={}, client_ip=None, user_agent=None))
    # The trail keeps what happened and when (proof we acted on consent), not who or from where.
    session.execute(update(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                    .values(detail={}, source_url=None, client_ip=None, user_agent=None))
    session.execute(update(DonationInquiry).where(DonationInquiry.contact_id == contact_id)
                    .values(message="", in_honor_of="", amount_range="", answer=None, updated_at=now))
    # Areas, availability and the pipeline history go with the profile (ON DELETE CASCADE).
    vol_ids = list(session.scalars(select(Volunteer.id).where(Volunteer.contact_id == contact_id)))
    if vol_ids:
        for table in (VolunteerArea, VolunteerAvailability, VolunteerEvent):
            session.execute(delete(table).where(table.volunteer_id.in_(vol_ids)))  # type: ignore[attr-defined]
        session.execute(delete(Volunteer).where(Volunteer.id.in_(vol_ids)))  # type: ignore[union-attr]
    session.execute(update(Delivery).where(Delivery.contact_id == contact_id).values(error=None))
    contact.email = None
    contact.email_key = None
    contact.first_name = contact.last_name = contact.phone = contact.postal_code = ""
    contact.role = None
    contact.bereaved = False
    contact.status = ContactStatus.erased
    contact.last_engaged_at = None
    contact.erased_at = contact.updated_at = now
    session.add(contact)
    audit(session, staff_email, "contact.erase", f"contact:{contact_id}", rows=1)
    events.forget_contact(session, contact_id)
    events.record(session, "contact.erased", contact_id, email=None)
    session.flush()


# --- data-subject access ----------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export(session: Session, contact_id: int, staff_email: str) -> dict[str, Any]:
    """Everything held about one person, as JSON-ready data (SPEC 5: data-subject access)."""
    contact = get_contact(session, contact_id)
    profile = contacts.contact_dict(session, contact)
    profile.update(bereaved=contact.bereaved, soft_bounces=contact.soft_bounces,
                   last_engaged_at=_iso(contact.last_engaged_at))
    subs = [{"list": s.list, "state": s.state, "frequency": s.frequency, "created_at": _iso(s.created_at),
             "confirmed_at": _iso(s.confirmed_at), "unsubscribed_at": _iso(s.unsubscribed_at)}
            for s in contacts.subscriptions_of(session, contact_id).values()]
    consent = [{"action": e.action, "list": e.list, "source": e.source, "source_url": e.source_url,
                "client_ip": e.client_ip, "user_agent": e.user_agent, "consent_version": e.consent_version,
                "detail": e.detail, "staff_email": e.staff_email, "created_at": _iso(e.created_at)}
               for e in session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                        .order_by(ConsentEvent.id))]
    deliveries = [{"campaign_id": d.campaign_id, "campaign": name, "kind": kind, "status": d.status,
                   "sent_at": _iso(d.sent_at), "opened_at": _iso(d.opened_at), "clicked_at": _iso(d.clicked_at),
                   "unsubscribed_at": _iso(d.unsubscribed_at), "bounced_at": _iso(d.bounced_at)}
                  for d, name, kind in session.execute(
                      select(Delivery, Campaign.name, Campaign.kind).join(Campaign, Campaign.id == Delivery.campaign_id)
                      .where(Delivery.contact_id == contact_id).order_by(Delivery.id))]
    submissions = [{"form": s.form, "payload": s.payload, "client_ip": s.client_ip, "user_agent": s.user_agent,
                    "received_at": _iso(s.received_at)}
                   for s in session.scalars(select(FormSubmission).where(FormSubmission.contact_id == contact_id)
                                            .order_by(FormSubmission.id))]
    volunteer = None
    vol = session.scalars(select(Volunteer).where(Volunteer.contact_id == contact_id)).first()
    if vol is not None:
        from crm.volunteers import service as volunteers

        assert vol.id is not None
        volunteer = {"status": vol.status, "areas": volunteers.areas_of(session, vol.id),
                     "availability": volunteers.availability_of(session, vol.id), "skills": vol.skills,
                     "languages": vol.languages, "message": vol.message, "postal_code": vol.postal_code,
                     "travel_radius_km": vol.travel_radius_km, "paused_until": _iso(vol.paused_until),
                     "created_at": _iso(vol.created_at),
                     "events": [{"from_status": e.from_status, "to_status": e.to_status, "note": e.note,
                                 "actor": e.actor, "created_at": _iso(e.created_at)}
                                for e in session.scalars(select(VolunteerEvent)
                                                         .where(VolunteerEvent.volunteer_id == vol.id)
                                                         .order_by(VolunteerEvent.id))]}
    inquiries = [{"inquiry_type": i.inquiry_type, "amount_range": i.amount_range, "message": i.message,
                  "in_honor_of": i.in_honor_of, "status": i.status, "answer": i.answer,
                  "created_at": _iso(i.created_at), "answered_at": _iso(i.answered_at)}
                 for i in session.scalars(select(DonationInquiry).where(DonationInquiry.contact_id == contact_id)
                                          .order_by(DonationInquiry.id))]
    audit(session, staff_email, "contact.export", f"contact:{contact_id}", rows=1)
    return {"contact": profile, "subscriptions": subs, "consent_events": consent, "deliveries": deliveries,
            "form_submissions": submissions, "volunteer": volunteer, "donation_inquiries": inquiries,
            "exported_at": utcnow().isoformat()}
