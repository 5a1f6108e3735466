"""The three public forms and the taxonomy over HTTP: every status code the website can meet."""

from __future__ import annotations

from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from litestar.testing import TestClient
from sqlalchemy import func, select

from crm.app import create_app
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactInterest, Subscription
from crm.db import session_scope
from crm.donations.models import DonationInquiry
from crm.forms.models import FormSubmission
from crm.outbox.models import OutboxMessage
from tests.conftest import make_settings
from tests.factories import make_contact
from tests.helpers import donation_body, newsletter_body, to, volunteer_body

FORMS = {
    "newsletter": ("/api/v1/forms/newsletter", newsletter_body, {"status": "pending_confirmation"}),
    "volunteer": ("/api/v1/forms/volunteer-interest", volunteer_body, {"status": "received"}),
    "donation": ("/api/v1/forms/donation-inquiry", donation_body, {"status": "received"}),
}


def count(settings: Any, model: Any) -> int:
    with session_scope(settings) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def email_validator_message(address: str) -> str:
    with pytest.raises(EmailNotValidError) as exc:
        validate_email(address, check_deliverability=False)
    return str(exc.value)


# --- taxonomy -----------------------------------------------------------------------------------


def test_interests_lists_the_seeded_taxonomy(client):
    r = client.get("/api/v1/interests")
    assert r.status_code == 200
    items = r.json()
    assert {i["key"] for i in items} >= {
        "cancer-information", "treatment-and-side-effects", "clinical-trials", "caregiving", "tobacco-cessation",
        "patient-programs", "volunteering", "fundraising-events", "donations", "research-news", "advocacy"}
    assert all({"key", "label", "description"} <= set(i) and i["label"] for i in items)


# --- 202 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_each_form_answers_202_with_the_contract_body(client, settings, form):
    path, body, answer = FORMS[form]
    r = client.post(path, json=body())
    assert r.status_code == 202, r.text
    assert r.json() == answer
    assert count(settings, FormSubmission) == 1
    assert count(settings, Contact) == 1


def test_submission_is_stored_as_received(client, settings):
    body = newsletter_body(unknown_extra="kept as sent", email="  Ana@Example.ORG ")
    client.post("/api/v1/forms/newsletter", json=body, headers={"User-Agent": "FormBrowser/1.0"})
    with session_scope(settings) as s:
        sub = s.scalars(select(FormSubmission)).one()
        assert sub.form == "newsletter"
        assert sub.payload == body
        assert sub.user_agent == "FormBrowser/1.0"
        assert sub.contact_id is not None


def test_each_form_sends_its_emails(client, settings, sent):
    client.post("/api/v1/forms/newsletter", json=newsletter_body())
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body())
    client.post("/api/v1/forms/donation-inquiry", json=donation_body())
    messages = sent()
    assert [m["Subject"] for m in to(messages, "ana@example.org")] == ["Please confirm your subscription"]
    assert [m["Subject"] for m in to(messages, "vic@example.org")] == ["Thank you for offering to volunteer"]
    assert [m["Subject"] for m in to(messages, "di@example.org")] == ["We received your question about giving"]
    [vnotice] = to(messages, settings.notify_volunteers)
    assert "Vic Ray" in vnotice["Subject"]
    [dnotice] = to(messages, settings.notify_donations)
    assert dnotice["Subject"].startswith("New donation inquiry #")
    assert all(m["Auto-Submitted"] == "auto-generated" for m in messages)


@pytest.mark.parametrize("form", ["volunteer", "donation"])
def test_newsletter_true_starts_the_double_opt_in(client, settings, sent, form):
    path, body, _ = FORMS[form]
    address = body()["email"]
    client.post(path, json=body(newsletter=True))
    assert "Please confirm your subscription" in [m["Subject"] for m in to(sent(), address)]
    with session_scope(settings) as s:
        contact = contacts.find_by_email(s, contacts.normalize_email(address))
        assert contact is not None and contact.id is not None
        assert contacts.subscriptions_of(s, contact.id)["newsletter"].state == "pending"


def test_donation_without_newsletter_subscribes_to_nothing(client, settings):
    client.post("/api/v1/forms/donation-inquiry", json=donation_body())
    assert count(settings, Subscription) == 0
    assert count(settings, DonationInquiry) == 1


def test_volunteer_is_confirmed_on_volunteer_updates(client, settings):
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body())
    with session_scope(settings) as s:
        contact = contacts.find_by_email(s, contacts.normalize_email("vic@example.org"))
        assert contact is not None and contact.id is not None
        assert {k: v.state for k, v in contacts.subscriptions_of(s, contact.id).items()} == {
            "volunteer-updates": "confirmed"}


def test_resignup_merges_interests_into_one_contact(client, settings):
    client.post("/api/v1/forms/newsletter", json=newsletter_body(interests=["caregiving"]))
    client.post("/api/v1/forms/newsletter", json=newsletter_body(email="ANA@example.org", interests=["advocacy"]))
    assert count(settings, Contact) == 1
    with session_scope(settings) as s:
        assert sorted(s.scalars(select(ContactInterest.interest_key))) == ["advocacy", "caregiving"]


# --- 400 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["not-an-address", "ana@", "ana@@example.org", "ana@example..org"])
def test_bad_email_is_400_with_email_validators_message(client, address):
    r = client.post("/api/v1/forms/newsletter", json=newsletter_body(email=address))
    assert r.status_code == 400
    assert r.json()["errors"]["email"] == email_validator_message(address)


@pytest.mark.parametrize("form", FORMS)
def test_missing_email_is_400_naming_email(client, form):
    path, body, _ = FORMS[form]
    payload = body()
    del payload["email"]
    r = client.post(path, json=payload)
    assert r.status_code == 400
    assert "email" in r.json()["errors"]


def test_newsletter_400_names_every_bad_field(client, settings):
    r = client.post("/api/v1/forms/newsletter", json=newsletter_body(
        interests=["caregiving", "astrology"], language="fr", role="wizard", frequency="hourly", consent=False))
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert set(errors) == {"interests", "language", "role", "frequency", "consent"}
    assert "'astrology'" in errors["interests"]
    assert "'fr'" in errors["language"] and "'wizard'" in errors["role"] and "'hourly'" in errors["frequency"]
    assert count(settings, FormSubmission) == 0 and count(settings, Contact) == 0


def test_newsletter_needs_consent(client):
    payload = newsletter_body()
    del payload["consent"]
    r = client.post("/api/v1/forms/newsletter", json=payload)
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"consent"}


def test_volunteer_400_names_unknown_area_and_availability(client, settings):
    r = client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(
        areas=["events", "juggling"], availability=["weekends", "midnight"]))
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert "'juggling'" in errors["areas"]
    assert "'midnight'" in errors["availability"]
    assert count(settings, FormSubmission) == 0


def test_volunteer_400_for_empty_choices_and_missing_names(client):
    r = client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(areas=[], availability=[], first_name=""))
    assert r.status_code == 400
    assert {"areas", "availability", "first_name"} <= set(r.json()["errors"])


def test_volunteer_missing_required_fields_are_each_named(client):
    r = client.post("/api/v1/forms/volunteer-interest", json={"email": "vic@example.org"})
    assert r.status_code == 400
    assert {"first_name", "last_name", "postal_code", "areas", "availability"} <= set(r.json()["errors"])


def test_donation_400_names_unknown_inquiry_type(client, settings):
    r = client.post("/api/v1/forms/donation-inquiry", json=donation_body(inquiry_type="bitcoin"))
    assert r.status_code == 400
    assert "'bitcoin'" in r.json()["errors"]["inquiry_type"]
    assert count(settings, DonationInquiry) == 0


@pytest.mark.parametrize(("form", "field"), [
    ("newsletter", "first_name"), ("volunteer", "first_name"), ("volunteer", "last_name"),
    ("donation", "first_name"), ("donation", "last_name"), ("donation", "in_honor_of"),
])
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r"])
def test_line_breaks_in_names_are_refused(client, settings, form, field, breaker):
    path, body, _ = FORMS[form]
    r = client.post(path, json=body(**{field: f"Ana{breaker}Bcc: victim@example.org"}))
    assert r.status_code == 400
    assert field in r.json()["errors"]
    assert count(settings, FormSubmission) == 0


def test_non_json_body_is_415(client):
    # SPEC 4: public JSON posts accept only application/json.
    r = client.post("/api/v1/forms/newsletter", content=b"email=ana@example.org",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post("/api/v1/forms/newsletter", content=b"not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"body"}


def test_wrong_types_are_400_not_500(client):
    r = client.post("/api/v1/forms/newsletter", json={"email": 5, "interests": "caregiving", "consent": "yes"})
    assert r.status_code == 400


# --- honeypot -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_honeypot_answers_as_usual_and_keeps_nothing(client, settings, sent, form):
    path, body, answer = FORMS[form]
    r = client.post(path, json=body(website="http://spam.example", newsletter=True))
    assert r.status_code == 202
    assert r.json() == answer
    for model in (FormSubmission, Contact, OutboxMessage, Subscription):
        assert count(settings, model) == 0
    assert sent() == []


# --- 413 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_body_over_64_kib_is_413(client, settings, form):
    path, body, _ = FORMS[form]
    r = client.post(path, json=body(message="x" * (64 * 1024)))
    assert r.status_code == 413
    assert count(settings, FormSubmission) == 0


def test_body_just_under_the_limit_is_judged_on_its_content(client):
    # 60 KiB of message is within the body limit but over the field's own length limit: a 400, not a 413.
    r = client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(message="x" * (60 * 1024)))
    assert r.status_code == 400
    assert "message" in r.json()["errors"]


# --- 429 ----------------------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(settings, tmp_path):
    app = create_app(make_settings(tmp_path, settings.database_url, form_rate_limit=2))
    with TestClient(app=app, base_url="http://testserver.local") as c:
        codes = [c.post("/api/v1/forms/newsletter", json=newsletter_body(email=f"p{i}@example.org")).status_code
                 for i in range(2)]
        assert codes == [202, 202]
        r = c.post("/api/v1/forms/donation-inquiry", json=donation_body())
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # The taxonomy and the staff API are not the forms' budget.
        assert c.get("/api/v1/interests").status_code == 200
    assert count(settings, FormSubmission) == 2


# --- CORS ---------------------------------------------------------------------------------------

SITE = "https://www.charity.example"


def _client(settings: Any, tmp_path: Any, **overrides: Any) -> TestClient[Any]:
    return TestClient(app=create_app(make_settings(tmp_path, settings.database_url, **overrides)),
                      base_url="http://testserver.local")


def _preflight(c: TestClient[Any], origin: str) -> Any:
    return c.options("/api/v1/forms/newsletter", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})


def test_cors_allows_the_configured_origins_only(settings, tmp_path):
    with _client(settings, tmp_path, allowed_origins=f"{SITE}, https://donate.charity.example") as c:
        ok = _preflight(c, SITE)
        assert ok.status_code in (200, 204)
        assert ok.headers["Access-Control-Allow-Origin"] == SITE
        assert "POST" in ok.headers["Access-Control-Allow-Methods"]
        assert "content-type" in ok.headers["Access-Control-Allow-Headers"].lower()

        bad = _preflight(c, "https://evil.example")
        assert bad.status_code >= 400
        assert "Access-Control-Allow-Origin" not in bad.headers

        simple = c.post("/api/v1/forms/newsletter", json=newsletter_body(), headers={"Origin": SITE})
        assert simple.status_code == 202
        assert simple.headers["Access-Control-Allow-Origin"] == SITE
        other = c.post("/api/v1/forms/newsletter", json=newsletter_body(), headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_in_development_allows_any_origin(client):
    r = _preflight(client, "http://localhost:3000")
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("origin", [SITE, "null"])
def test_cors_in_production_without_origins_allows_none(settings, tmp_path, origin):
    with _client(settings, tmp_path, env="production") as c:
        pre = _preflight(c, origin)
        assert pre.status_code >= 400
        assert "Access-Control-Allow-Origin" not in pre.headers
        r = c.post("/api/v1/forms/newsletter", json=newsletter_body(), headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers


# --- the answer never tells whether an address is known -------------------------------------------


def _answer(client: TestClient[Any], path: str, body: dict[str, Any]) -> tuple[int, str, str | None, str | None]:
    r = client.post(path, json=body)
    return r.status_code, r.text, r.headers.get("content-type"), r.headers.get("content-length")


@pytest.mark.parametrize("form", FORMS)
def test_answers_identical_for_new_known_unsubscribed_and_suppressed(client, settings, session, form):
    path, body, _ = FORMS[form]
    known = make_contact(session, email="known@example.org", lists={"newsletter": "confirmed"})
    unsub = make_contact(session, email="gone@example.org", status="unsubscribed",
                         lists={"newsletter": "unsubscribed"})
    bounced = make_contact(session, email="bounced@example.org", status="bounced")
    assert known.email_key and unsub.email_key and bounced.email_key
    contacts.suppress(session, unsub.email_key, "unsubscribed")
    contacts.suppress(session, bounced.email_key, "bounced")
    session.commit()
    answers = {_answer(client, path, body(email=a)) for a in
               ("new@example.org", "known@example.org", "gone@example.org", "bounced@example.org")}
    assert len(answers) == 1
    assert answers.pop()[0] == 202


def test_suppressed_bounced_address_gets_no_mail_but_staff_are_told(client, session, sent, settings):
    bounced = make_contact(session, email="bounced@example.org", status="bounced")
    assert bounced.email_key
    contacts.suppress(session, bounced.email_key, "bounced")
    session.commit()
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(email="bounced@example.org"))
    messages = sent()
    assert to(messages, "bounced@example.org") == []
    assert len(to(messages, settings.notify_volunteers)) == 1
