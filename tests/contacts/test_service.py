"""Contacts and the form services, called directly: normalization, dedupe, merge, consent trail."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from crm.contacts import service as contacts
from crm.contacts.models import ConsentEvent, Contact
from crm.errors import Invalid
from crm.forms import service as forms
from crm.forms.service import CONSENT_TEXTS, RequestMeta
from crm.outbox.models import OutboxMessage
from tests.factories import make_contact
from tests.helpers import donation_body, newsletter_body, volunteer_body

META = RequestMeta(client_ip="203.0.113.7", user_agent="Mozilla/5.0 (test)")


@pytest.mark.parametrize(("raw", "email", "key"), [
    ("Ana@Example.ORG", "Ana@example.org", "ana@example.org"),
    ("  ana@example.org\t", "ana@example.org", "ana@example.org"),
    ("ANA.MARIA@EXAMPLE.ORG", "ANA.MARIA@example.org", "ana.maria@example.org"),
    ("jose@bücher.example", "jose@bücher.example", "jose@bücher.example"),
])
def test_normalize_email(raw, email, key):
    n = contacts.normalize_email(raw)
    assert (n.email, n.key) == (email, key)


@pytest.mark.parametrize("raw", ["", "   ", None, 42, "no-at-sign", "a@b@c.example", "ana@example.org\r\nBcc: x@y.z",
                                 "ana@localhost", "josé@bücher.example"])
def test_normalize_email_refuses(raw):
    with pytest.raises(Invalid) as exc:
        contacts.normalize_email(raw)
    assert set(exc.value.fields) == {"email"}


def test_normalize_email_does_no_dns():
    # A domain that cannot exist still passes: syntax only, the service may run offline.
    assert contacts.normalize_email("someone@no-such-domain.invalid-tld-xyz").key == "someone@no-such-domain.invalid-tld-xyz"


def test_upsert_dedupes_case_insensitively(session):
    a, created_a = contacts.upsert_contact(session, contacts.normalize_email("Ana@example.org"), first_name="Ana")
    b, created_b = contacts.upsert_contact(session, contacts.normalize_email("ANA@EXAMPLE.ORG"), last_name="Lee")
    assert (created_a, created_b) == (True, False)
    assert a.id == b.id
    assert (b.first_name, b.last_name) == ("Ana", "Lee")
    assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_upsert_keeps_fields_that_the_new_post_left_empty(session):
    contacts.upsert_contact(session, contacts.normalize_email("ana@example.org"), first_name="Ana", phone="555")
    c, _ = contacts.upsert_contact(session, contacts.normalize_email("ana@example.org"), first_name="", phone=None)
    assert (c.first_name, c.phone) == ("Ana", "555")


def test_resignup_merges_interests_without_a_second_contact(session, settings):
    forms.submit_newsletter(session, settings, newsletter_body(interests=["caregiving", "clinical-trials"]), META)
    forms.submit_newsletter(session, settings, newsletter_body(email="ANA@example.org",
                                                               interests=["clinical-trials", "advocacy"]), META)
    [contact] = session.scalars(select(Contact)).all()
    assert contact.id is not None
    assert contacts.interests_of(session, contact.id) == ["advocacy", "caregiving", "clinical-trials"]
    assert contacts.subscriptions_of(session, contact.id)["newsletter"].state == "pending"


def test_volunteer_then_donation_is_one_contact(session, settings):
    forms.submit_volunteer(session, settings, volunteer_body(email="sam@example.org"), META)
    forms.submit_donation(session, settings, donation_body(email="Sam@Example.org", phone="404-555-0100"), META)
    [contact] = session.scalars(select(Contact)).all()
    assert contact.phone == "404-555-0100"


def test_signup_records_a_full_consent_event(session, settings):
    body = newsletter_body(source_url="https://www.charity.example/newsletter", frequency="monthly")
    forms.submit_newsletter(session, settings, body, META)
    [event] = session.scalars(select(ConsentEvent)).all()
    assert event.action == "signup"
    assert event.list == "newsletter"
    assert event.source == "newsletter-form"
    assert event.source_url == "https://www.charity.example/newsletter"
    assert event.client_ip == "203.0.113.7"
    assert event.user_agent == "Mozilla/5.0 (test)"
    assert event.consent_version == settings.consent_version
    assert event.consent_text_hash == hashlib.sha256(CONSENT_TEXTS["newsletter"].encode()).hexdigest()
    assert event.created_at is not None
    assert event.detail["interests"] == ["caregiving"] and event.detail["frequency"] == "monthly"


def test_volunteer_form_records_consent_for_volunteer_updates(session, settings):
    forms.submit_volunteer(session, settings, volunteer_body(source_url="https://www.charity.example/volunteer"),
                           META)
    [event] = session.scalars(select(ConsentEvent)).all()
    assert (event.action, event.list, event.source) == ("signup", "volunteer-updates", "volunteer-form")
    assert event.consent_text_hash == hashlib.sha256(CONSENT_TEXTS["volunteer"].encode()).hexdigest()
    assert event.client_ip == "203.0.113.7"


def test_every_signup_is_a_new_consent_event(session, settings):
    forms.submit_newsletter(session, settings, newsletter_body(), META)
    forms.submit_newsletter(session, settings, newsletter_body(), META)
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 2


def test_confirmed_subscriber_signing_up_again_gets_already_subscribed(session, settings):
    make_contact(session, email="ana@example.org", lists={"newsletter": "confirmed"})
    forms.submit_newsletter(session, settings, newsletter_body(), META)
    assert list(session.scalars(select(OutboxMessage.template))) == ["already-subscribed"]


def test_unsubscribed_subscriber_signing_up_again_is_pending_and_gets_a_confirm(session, settings):
    c = make_contact(session, email="ana@example.org", lists={"newsletter": "unsubscribed"})
    assert c.id is not None and c.email_key is not None
    contacts.suppress(session, c.email_key, "unsubscribed")
    forms.submit_newsletter(session, settings, newsletter_body(), META)
    assert contacts.subscriptions_of(session, c.id)["newsletter"].state == "pending"
    assert list(session.scalars(select(OutboxMessage.template))) == ["confirm"]


def test_suppressed_for_bounces_gets_no_confirm(session, settings):
    c = make_contact(session, email="ana@example.org")
    assert c.email_key is not None
    contacts.suppress(session, c.email_key, "bounced")
    assert forms.submit_newsletter(session, settings, newsletter_body(), META) == []
    assert list(session.scalars(select(OutboxMessage.template))) == []


def test_suppression_is_kept_as_a_hash_and_strengthens_only(session):
    c = make_contact(session, email="ana@example.org")
    assert c.email_key is not None
    contacts.suppress(session, c.email_key, "complained")
    contacts.suppress(session, c.email_key, "unsubscribed")
    assert contacts.suppression_reason(session, c.email_key) == "complained"
    assert "ana@example.org" not in contacts.email_hash(session, c.email_key)


def test_mailable_gate(session):
    ok = make_contact(session, email="ok@example.org", lists={"newsletter": "confirmed"})
    pending = make_contact(session, email="pending@example.org", lists={"newsletter": "pending"})
    suppressed = make_contact(session, email="sup@example.org", lists={"newsletter": "confirmed"})
    inactive = make_contact(session, email="in@example.org", status="bounced", lists={"newsletter": "confirmed"})
    assert suppressed.email_key is not None
    contacts.suppress(session, suppressed.email_key, "complained")
    ids = set(session.scalars(select(Contact.id).where(contacts.mailable("newsletter"))))
    assert ids == {ok.id}
    assert pending.id not in ids and inactive.id not in ids


@pytest.mark.parametrize("field", ["first_name", "last_name", "phone", "source_url", "amount_range", "in_honor_of"])
def test_clean_text_single_line_refuses_line_breaks(field):
    with pytest.raises(Invalid) as exc:
        contacts.clean_text("a\nb", field)
    assert set(exc.value.fields) == {field}


def test_clean_text_multiline_allows_line_breaks_but_not_nul():
    assert contacts.clean_text(" line one\nline two ", "message", single_line=False) == "line one\nline two"
    with pytest.raises(Invalid):
        contacts.clean_text("a\x00b", "message", single_line=False)
