"""Staff operations on one contact: create, change, erase ("forget me"), export ("what do you hold?").

Staff may put a person on a list as `confirmed` (they consented elsewhere, e.g. a paper form at a walk):
that writes a consent event naming the staff member. They may NOT re-confirm an address the person
took off a list, nor one on the suppression list (unsubscribed everywhere, bounced, complained, erased):
that is a 409 naming why. Only the person can undo their own "no", through the public signup form.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from crm.contacts import roles
from crm.contacts import service as contacts
from crm.contacts.consent import ConsentSource, record_consent
from crm.contacts.models import (
    Contact,
    ContactStatus,
    Language,
    ListKey,
    Role,
    SubscriptionState,
)
from crm.db import utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.events import service as events

FIELDS = ("email", "first_name", "last_name", "phone", "postal_code", "language", "role", "interests", "tags",
          "subscriptions", "confirm_role_address")
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


def _parse_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid.field("confirm_role_address", "must be true or false")
    return value


def _check_role_address(session: Session, contact: Contact, wanted: dict[str, str], confirmed: bool) -> None:
    """SPEC 14: staff putting a role address (info@, admin@ ...) on a list must say they mean it."""
    assert contact.id is not None
    current = {k: sub.state for k, sub in contacts.subscriptions_of(session, contact.id).items()}
    joining = [k for k, state in wanted.items() if state != SubscriptionState.unsubscribed
               and current.get(k) in (None, SubscriptionState.unsubscribed)]
    if joining and not confirmed and roles.is_role_address(contact.email):
        raise Conflict(roles.role_conflict_message(contact.email),
                       fields={"confirm_role_address": f"{contact.email} is a role address; set it to true "
                                                       "to add it to a list anyway"})


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
        "confirm_role_address": _parse_flag,
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
    origin = ConsentSource(source="staff", staff_email=staff_email)
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
        if contacts.set_subscription_state(session, sub, state, source="staff"):
            action = {"confirmed": "staff-confirm", "unsubscribed": "staff-unsubscribe"}.get(state, "staff-pending")
            record_consent(session, contact.id, action, origin, list_key=list_key,
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
        _check_role_address(session, contact, fields["subscriptions"], fields.get("confirm_role_address", False))
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
