"""The three public forms: validate, store the submission, upsert, queue mail.

Everything here runs in the caller's one transaction, so a form answered 202 has
its submission, its contact changes and its outbox rows on disk together.
Answers never depend on whether the address was known.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, case, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.consent import ConsentSource, consent_columns, insert_consent, record_consent
from crm.contacts.models import (
    Contact,
    ContactStatus,
    Frequency,
    ListKey,
    Role,
    Subscription,
    SubscriptionState,
)
from crm.db import is_postgres, utcnow
from crm.donations import service as donations
from crm.events import service as events
from crm.forms import newsletter_pg
from crm.forms.models import FormSubmission
from crm.forms.validation import Errors, choice, choices, common_fields, require, text_list
from crm.links import person_links, url_for
from crm.origin import RequestMeta
from crm.outbox import service as outbox
from crm.volunteers import service as volunteers

# The wording each form shows next to its consent checkbox; its hash goes on every consent event.
CONSENT_TEXTS = {
    "newsletter": "Yes, email me cancer information and news I choose. I can unsubscribe at any time.",
    "volunteer": "Yes, email me about volunteering with the charity. I can unsubscribe at any time.",
}
NO_MAIL_REASONS = ("bounced", "complained")  # suppressed addresses we do not even send transactional mail to


def _store_submission(session: Session, form: str, data: dict[str, Any], meta: RequestMeta,
                      contact_id: int | None) -> FormSubmission:
    """The post as received. Added after the contact upsert so it is one INSERT (with its contact_id)
    rather than an INSERT and an UPDATE; it commits in the same transaction either way."""
    sub = FormSubmission(**_submission_row(form, data, meta, contact_id))
    session.add(sub)
    return sub


def _mail_allowed(session: Session, contact: Contact) -> bool:
    """Confirm links may go to an unsubscribed or erased address (clicking one is how the person
    comes back), never to one that bounced or complained."""
    assert contact.email_key is not None
    return contacts.suppression_reason(session, contact.email_key) not in NO_MAIL_REASONS


def _ack_allowed(session: Session, contact: Contact) -> bool:
    """Acknowledgements and welcomes go only to unsuppressed addresses: a stranger can post any
    address, and a suppressed person asked for no mail (staff still get the notice and can answer)."""
    assert contact.email_key is not None
    return contacts.suppression_reason(session, contact.email_key) is None


# --- newsletter -------------------------------------------------------------------------------


def validate_newsletter(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    errors = Errors()
    values = common_fields(errors, data)
    values["interests"] = errors.run("interests", contacts.validate_interests, session, data.get("interests"))
    values["role"] = choice(errors, "role", data.get("role"), [r.value for r in Role])
    values["frequency"] = choice(errors, "frequency", data.get("frequency"), [f.value for f in Frequency])
    if data.get("consent") is not True:
        errors.add("consent", "must be true: we only email people who ask us to")
    errors.raise_if_any()
    return values


def start_newsletter_optin(
    session: Session,
    settings: Settings,
    contact: Contact,
    origin: ConsentSource,
    *,
    frequency: str | None,
    interests: list[str],
) -> list[int]:
    """The double opt-in: a pending subscription and a confirm email (or a note if already confirmed)."""
    assert contact.id is not None and contact.email is not None
    if interests:
        contacts.add_interests(session, contact.id, interests)
    sub = contacts.ensure_subscription(session, contact.id, ListKey.newsletter)
    if frequency and sub.state != SubscriptionState.confirmed:
        sub.frequency = frequency
    if sub.state == SubscriptionState.unsubscribed:
        contacts.set_subscription_state(session, sub, SubscriptionState.pending)
    session.add(sub)
    record_consent(
        session, contact.id, "signup", origin, list_key=ListKey.newsletter,
        detail={"interests": interests, "frequency": frequency or sub.frequency},
        consent_version=settings.consent_version, consent_text=CONSENT_TEXTS["newsletter"],
    )
    if not _mail_allowed(session, contact):
        return []
    return _queue_optin_mail(session, settings, contact, sub.state)


def _queue_optin_mail(session: Session, settings: Settings, contact: Contact | Row[Any], state: str,
                      topics: list[str] | None = None) -> list[int]:
    """The confirm email, or a note that they are already subscribed. `topics`: the contact's interest
    labels when the caller has them already (read here otherwise)."""
    ctx: dict[str, Any] = {"contact": _person(contact), "links": person_links(settings, contact.id)}
    if state == SubscriptionState.confirmed:
        template = "already-subscribed"
    else:
        template = "confirm"
        ctx["links"]["confirm"] = url_for(settings, contact.id, "confirm")
        # The confirm email names the list and the topics asked for, by their labels (SPEC 7).
        ctx["list_key"] = ListKey.newsletter.value
        ctx["topics"] = (topics if topics is not None
                         else contacts.interest_labels(session, contact.id, contact.language))
    mid = outbox.queue(session, template, contact.email, ctx, contact_id=contact.id, language=contact.language,
                       per_window=True)
    return [mid] if mid else []


def submit_newsletter(
    session: Session, settings: Settings, data: dict[str, Any], meta: RequestMeta,
    *, raw: dict[str, Any] | None = None,
) -> list[int]:
    """The public intake's hot path: what start_newsletter_optin does for an ORM contact, with no ORM
    objects. On PostgreSQL the signup's rows are one statement (crm.forms.newsletter_pg) and the
    confirm email's outbox row a second; elsewhere (SQLite) a Core statement per row. Both write
    the same rows (tests/forms/test_newsletter_paths.py)."""
    return write_newsletter(session, settings, validate_newsletter(session, data),
                            raw if raw is not None else data, meta)


def write_newsletter(session: Session, settings: Settings, values: dict[str, Any], payload: dict[str, Any],
                     meta: RequestMeta) -> list[int]:
    """submit_newsletter's writes, for values validate_newsletter returned (the intake validates
    before it joins a group commit, crm.forms.batch, so an invalid post never costs a group a rerun)."""
    if is_postgres(session):
        return _newsletter_one_statement(session, settings, values, payload, meta)
    return _newsletter_statements(session, settings, values, payload, meta)


def _newsletter_statements(session: Session, settings: Settings, values: dict[str, Any], payload: dict[str, Any],
                           meta: RequestMeta) -> list[int]:
    """Core statements, each answered in one round trip and none re-read: the contact upsert returns
    the suppression reason with the row, the subscription upsert applies frequency and re-subscription
    in its ON CONFLICT branch and returns the outcome."""
    contact, created, reason = contacts.upsert_contact_row(session, values["email"], first_name=values["first_name"],
                                                           language=values["language"], role=values["role"])
    contact_id: int = contact.id
    if created:
        events.record(session, "contact.created", contact_id, email=contact.email, source="newsletter")
    events.record(session, "form.submitted", contact_id, email=contact.email, form="newsletter")
    session.execute(_SUBMISSION_INSERT, _submission_row("newsletter", payload, meta, contact_id))
    interests: list[str] = values["interests"] or []
    frequency: str | None = values["frequency"]
    if interests:
        contacts.add_interests(session, contact_id, interests)
    state, stored_frequency = _refresh_newsletter_subscription(session, contact_id, frequency)
    origin = ConsentSource("newsletter-form", values["source_url"], meta.client_ip, meta.user_agent)
    insert_consent(
        session, contact_id, "signup", origin, list_key=ListKey.newsletter,
        detail={"interests": interests, "frequency": frequency or stored_frequency},
        consent_version=settings.consent_version, consent_text=CONSENT_TEXTS["newsletter"],
    )
    if reason in NO_MAIL_REASONS:
        return []
    return _queue_optin_mail(session, settings, contact, state)


def _newsletter_one_statement(session: Session, settings: Settings, values: dict[str, Any],
                              payload: dict[str, Any], meta: RequestMeta) -> list[int]:
    """The same rows as _newsletter_statements, written by one statement, then the outbox row."""
    email = values["email"]
    interests: list[str] = values["interests"] or []
    frequency: str | None = values["frequency"]
    origin = ConsentSource("newsletter-form", values["source_url"], meta.client_ip, meta.user_agent)
    consent = consent_columns(origin, settings.consent_version, CONSENT_TEXTS["newsletter"])
    submission = _submission_row("newsletter", payload, meta, None)
    session.flush()  # pending ORM changes, if any, go first (as every generic statement's flush did)
    row = newsletter_pg.signup(session, {
        "email": email.email, "email_key": email.key, "email_hash": contacts.email_hash(session, email.key),
        "first_name": values["first_name"], "language": values["language"], "role": values["role"],
        "now": utcnow(), "payload": payload, "client_ip": meta.client_ip,
        "submission_user_agent": submission["user_agent"], "interests": interests,
        "interests_json": json.dumps(interests), "frequency": frequency,
        "frequency_or_default": frequency or Frequency.weekly.value,
        "source": consent["source"], "source_url": consent["source_url"],
        "consent_user_agent": consent["user_agent"], "consent_version": consent["consent_version"],
        "consent_text_hash": consent["consent_text_hash"],
    }, set_frequency=bool(frequency))
    if row.suppression_reason in NO_MAIL_REASONS:
        return []
    return _queue_optin_mail(session, settings, row, row.state, topics=list(row.topics))


# Built once, executed with parameters: statements carrying literal values cost more CPU to build and
# cache-key than to run.
_SUBMISSION_INSERT = insert(FormSubmission.__table__)  # type: ignore[attr-defined]
_SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]


def _submission_row(form: str, payload: dict[str, Any], meta: RequestMeta, contact_id: int | None
                    ) -> dict[str, Any]:
    return {"form": form, "payload": payload, "client_ip": meta.client_ip, "contact_id": contact_id,
            "user_agent": (meta.user_agent or "")[:500] or None, "received_at": utcnow()}


def _refresh_newsletter_subscription(session: Session, contact_id: int, frequency: str | None
                                     ) -> tuple[str, str | None]:
    """ensure_subscription + the frequency and unsubscribed -> pending steps of start_newsletter_optin,
    as one upsert; returns the stored (state, frequency). A confirmed subscription keeps its frequency."""
    stmt = _newsletter_upsert(session.get_bind().dialect.name, bool(frequency))
    state, stored = session.execute(stmt, {
        "contact_id": contact_id, "list": ListKey.newsletter.value, "state": SubscriptionState.pending.value,
        "frequency": frequency or Frequency.weekly.value, "created_at": utcnow()}).one()
    return state, stored


@lru_cache(maxsize=4)
def _newsletter_upsert(dialect: str, set_frequency: bool) -> Any:
    col = _SUBSCRIPTIONS.c
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_SUBSCRIPTIONS)
    set_: dict[str, Any] = {"state": case((col.state == SubscriptionState.unsubscribed.value,
                                           SubscriptionState.pending.value), else_=col.state)}
    if set_frequency:
        set_["frequency"] = case((col.state == SubscriptionState.confirmed.value, col.frequency),
                                 else_=stmt.excluded.frequency)
    stmt = stmt.on_conflict_do_update(index_elements=["contact_id", "list"], set_=set_)
    return stmt.returning(col.state, col.frequency)


# --- volunteer interest -----------------------------------------------------------------------


def validate_volunteer(data: dict[str, Any]) -> dict[str, Any]:
    errors = Errors()
    values = common_fields(errors, data)
    values["postal_code"] = errors.run("postal_code", contacts.clean_text, data.get("postal_code"), "postal_code",
                                       max_length=20)
    require(errors, values, "first_name", "last_name", "postal_code")
    values["areas"] = choices(errors, "areas", data.get("areas"), volunteers.AREAS, label="area", required=True)
    values["availability"] = choices(errors, "availability", data.get("availability"), volunteers.AVAILABILITY,
                                     label="availability", required=True)
    skills_raw = data.get("skills")
    values["skills"] = ", ".join(text_list(errors, "skills", skills_raw)) if isinstance(skills_raw, list) else (
        errors.run("skills", contacts.clean_text, skills_raw, "skills", max_length=2000, single_line=False))
    values["languages"] = text_list(errors, "languages", data.get("languages"))
    values["message"] = errors.run("message", contacts.clean_text, data.get("message"), "message", max_length=5000,
                                   single_line=False)
    errors.raise_if_any()
    return values


def submit_volunteer(
    session: Session, settings: Settings, data: dict[str, Any], meta: RequestMeta,
    *, raw: dict[str, Any] | None = None,
) -> list[int]:
    values = validate_volunteer(data)
    contact, created = contacts.upsert_contact(
        session, values["email"], first_name=values["first_name"], last_name=values["last_name"],
        phone=values["phone"], postal_code=values["postal_code"], language=values["language"])
    assert contact.id is not None and contact.email is not None and contact.email_key is not None
    if created:
        events.record(session, "contact.created", contact.id, source="volunteer-interest")
    _store_submission(session, "volunteer-interest", raw if raw is not None else data, meta, contact.id)
    events.record(session, "form.submitted", contact.id, form="volunteer-interest")
    volunteer, _ = volunteers.upsert_from_form(
        session, contact.id, postal_code=values["postal_code"], areas=values["areas"],
        availability=values["availability"], skills=values["skills"] or "", languages=values["languages"],
        message=values["message"] or "")
    contacts.add_interests(session, contact.id, ["volunteering"])
    origin = ConsentSource("volunteer-form", values["source_url"], meta.client_ip, meta.user_agent)

    # They asked to hear about volunteering: the form itself is the consent for this one list, but
    # only for an address nobody has suppressed. Anyone can type anyone's address (SPEC 4): for a
    # suppressed one the submission and profile are kept, nothing is subscribed and nothing is sent;
    # only the person's own click on a confirm link lifts a suppression.
    ids: list[int] = []
    if _ack_allowed(session, contact) and contact.status == ContactStatus.active:
        _join_volunteer_updates(session, settings, contact, origin, values)
        ctx = {"contact": _person(contact), "links": person_links(settings, contact.id),
               "volunteer": {"areas": values["areas"], "availability": values["availability"]}}
        ids += _some(outbox.queue(session, "volunteer-welcome", contact.email, ctx, contact_id=contact.id,
                                  language=contact.language, per_window=True))
    ids.append(_queue_volunteer_notice(session, settings, contact, volunteer.id, values))  # type: ignore[arg-type]
    if data.get("newsletter") is True:
        ids += start_newsletter_optin(session, settings, contact, origin, frequency=None, interests=[])
    return ids


def _join_volunteer_updates(session: Session, settings: Settings, contact: Contact, origin: ConsentSource,
                            values: dict[str, Any]) -> None:
    """Confirm the volunteer-updates subscription; a consent event only when that changed something."""
    assert contact.id is not None
    sub = contacts.ensure_subscription(session, contact.id, ListKey.volunteer_updates)
    if contacts.set_subscription_state(session, sub, SubscriptionState.confirmed):
        record_consent(session, contact.id, "signup", origin, list_key=ListKey.volunteer_updates,
                       detail={"areas": values["areas"], "availability": values["availability"]},
                       consent_version=settings.consent_version, consent_text=CONSENT_TEXTS["volunteer"])
        sub.welcomed_at = None


def _queue_volunteer_notice(session: Session, settings: Settings, contact: Contact, volunteer_id: int | None,
                            values: dict[str, Any]) -> int | None:
    notice = {"contact": _person(contact), "volunteer_id": volunteer_id, "areas": values["areas"],
              "availability": values["availability"], "postal_code": values["postal_code"],
              "phone": values["phone"], "message": values["message"] or "", "skills": values["skills"] or "",
              "languages": values["languages"],
              # Staff open these in the console (after signing in, the console returns them here).
              "links": {"volunteer": f"{settings.public_base_url}/staff/volunteers/{volunteer_id}",
                        "pipeline": f"{settings.public_base_url}/staff/volunteers?status=interested"}}
    return outbox.queue(session, "volunteer-notice", settings.notify_volunteers, notice)  # type: ignore[arg-type]


# --- donation inquiry -------------------------------------------------------------------------


def submit_donation(
    session: Session, settings: Settings, data: dict[str, Any], meta: RequestMeta,
    *, raw: dict[str, Any] | None = None,
) -> list[int]:
    errors = Errors()
    values = common_fields(errors, data)
    require(errors, values, "first_name", "last_name")
    inquiry_type = choice(errors, "inquiry_type", data.get("inquiry_type"), donations.INQUIRY_TYPES)
    if "inquiry_type" not in errors.fields and not inquiry_type:
        errors.add("inquiry_type", "is required")
    amount_range = errors.run("amount_range", contacts.clean_text, data.get("amount_range"), "amount_range",
                              max_length=100)
    message = errors.run("message", contacts.clean_text, data.get("message"), "message", max_length=5000,
                         single_line=False)
    in_honor_of = errors.run("in_honor_of", contacts.clean_text, data.get("in_honor_of"), "in_honor_of",
                             max_length=200)
    errors.raise_if_any()

    contact, created = contacts.upsert_contact(
        session, values["email"], first_name=values["first_name"], last_name=values["last_name"],
        phone=values["phone"], language=values["language"])
    assert contact.id is not None and contact.email is not None
    if created:
        events.record(session, "contact.created", contact.id, source="donation-inquiry")
    submission = _store_submission(session, "donation-inquiry", raw if raw is not None else data, meta, contact.id)
    events.record(session, "form.submitted", contact.id, form="donation-inquiry")
    session.flush()  # the inquiry points at its submission
    inquiry = donations.open_inquiry(session, contact, submission_id=submission.id, inquiry_type=inquiry_type or "",
                                     amount_range=amount_range or "", message=message or "",
                                     in_honor_of=in_honor_of or "")
    ids: list[int] = []
    if _ack_allowed(session, contact):
        ctx = {"contact": _person(contact), "inquiry": {"type": inquiry.inquiry_type, "in_honor_of": in_honor_of or "",
                                                         "id": inquiry.id},
               "links": person_links(settings, contact.id)}
        ids += _some(outbox.queue(session, "donation-ack", contact.email, ctx, contact_id=contact.id,
                                  language=contact.language, per_window=True))
    # Staff notices never carry amounts (a gift in memory of someone is nobody's business in an inbox).
    notice = {"contact": _person(contact), "inquiry": {"id": inquiry.id, "type": inquiry.inquiry_type,
                                                        "in_honor_of": in_honor_of or "", "message": message or "",
                                                        "phone": values["phone"]},
              "console": donations.console_links(settings, inquiry.id)}
    ids.append(outbox.queue(session, "donation-notice", settings.notify_donations, notice))  # type: ignore[arg-type]
    if data.get("newsletter") is True:
        origin = ConsentSource("donation-form", values["source_url"], meta.client_ip, meta.user_agent)
        ids += start_newsletter_optin(session, settings, contact, origin, frequency=None, interests=[])
    return ids


def _some(message_id: int | None) -> list[int]:
    return [message_id] if message_id else []


def _person(contact: Contact | Row[Any]) -> dict[str, Any]:
    return {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email,
            "language": contact.language, "role": contact.role, "id": contact.id}
