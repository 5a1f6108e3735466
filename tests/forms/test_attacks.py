"""An attacker's view of the public forms (SPEC 4 "Anyone can type anyone's address"), over HTTP.

Every case here posts what a stranger could post and reads what reached an inbox off the MemorySender.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlmodel import select

from crm.app import create_app
from crm.contacts import service as contacts
from crm.contacts.models import Contact, Subscription
from crm.forms.models import FormSubmission
from tests.conftest import make_settings
from tests.factories import make_contact
from tests.helpers import donation_body, newsletter_body, volunteer_body

FORMS = {
    "newsletter": ("/api/v1/forms/newsletter", newsletter_body),
    "volunteer": ("/api/v1/forms/volunteer-interest", volunteer_body),
    "donation": ("/api/v1/forms/donation-inquiry", donation_body),
}
SITE = "https://www.charity.example"


def _to(messages: list[Any], address: str) -> list[Any]:
    return [m for m in messages if address in str(m["To"])]


def _text(message: Any) -> str:
    return str(message.get_body(("plain", "html")).get_content())


def _campaign_mailable(session: Any, email: str, list_key: str) -> bool:
    session.expire_all()
    contact = session.scalars(select(Contact).where(Contact.email_key == email)).one()
    return contacts.is_mailable(session, contact.id, list_key)


# --- 2. a form post is not the person ------------------------------------------------------------


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced", "complained", "erased"])
@pytest.mark.parametrize("form", FORMS)
def test_no_form_lifts_a_suppression(client, session, sent, form, reason):
    path, body = FORMS[form]
    email = "gone@example.org"
    make_contact(session, email=email, lists={"newsletter": "unsubscribed", "volunteer-updates": "unsubscribed"})
    contacts.suppress(session, email, reason)
    session.commit()
    for _ in range(3):
        assert client.post(path, json=body(email=email, newsletter=True)).status_code == 202
    assert contacts.suppression_reason(session, email) == reason
    assert not _campaign_mailable(session, email, "newsletter")
    assert not _campaign_mailable(session, email, "volunteer-updates")
    session.rollback()  # end the read: SQLite lets one writer in, and sent() marks rows sent
    # Only a confirm link may go (and not even that to a bounced or complained address): no welcome,
    # no acknowledgement that would tell the attacker the person exists.
    assert all("/confirm/" in _text(m) for m in _to(sent(), email)), [(m["Subject"], _text(m)) for m in sent()]
    if reason in ("bounced", "complained"):
        assert _to(sent(), email) == []


def test_volunteer_post_for_a_suppressed_address_keeps_the_profile_but_subscribes_nothing(client, session, sent):
    email = "vic@example.org"
    make_contact(session, email=email)
    contacts.suppress(session, email, "unsubscribed")
    session.commit()
    r = client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(email=email))
    assert (r.status_code, r.json()) == (202, {"status": "received"})
    contact = session.scalars(select(Contact).where(Contact.email_key == email)).one()
    assert session.scalars(select(FormSubmission).where(FormSubmission.contact_id == contact.id)).first()
    subs = session.scalars(select(Subscription).where(Subscription.contact_id == contact.id)).all()
    assert all(s.state != "confirmed" for s in subs)
    session.rollback()
    assert _to(sent(), email) == []
    assert sent(), "the volunteer team still hears about the post"


@pytest.mark.parametrize("form", FORMS)
def test_a_post_never_overwrites_what_the_person_set(client, session, form):
    path, body = FORMS[form]
    email = "ana@example.org"
    make_contact(session, email=email, first_name="Ana", last_name="Lopez", language="es",
                 lists={"newsletter": "confirmed"})
    session.commit()
    r = client.post(path, json=body(email=email, first_name="Mallory", last_name="Evil", language="en",
                                    role="patient"))
    assert r.status_code == 202, r.text
    session.expire_all()
    contact = session.scalars(select(Contact).where(Contact.email_key == email)).one()
    assert (contact.first_name, contact.last_name, contact.language) == ("Ana", "Lopez", "es")


def test_a_post_fills_empty_fields_of_a_known_contact(client, session):
    make_contact(session, email="ana@example.org", first_name="", last_name="")
    session.commit()
    assert client.post("/api/v1/forms/donation-inquiry", json=donation_body(email="ana@example.org")).status_code == 202
    session.expire_all()
    contact = session.scalars(select(Contact).where(Contact.email_key == "ana@example.org")).one()
    assert contact.first_name and contact.last_name


# --- 3. no inbox flooding ------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_eight_posts_one_email_of_each_kind(client, sent, form):
    path, body = FORMS[form]
    for _ in range(8):
        assert client.post(path, json=body(email="target@example.org", newsletter=True)).status_code == 202
    to_target = _to(sent(), "target@example.org")
    kinds = [str(m["Subject"]) for m in to_target]
    assert to_target and len(kinds) == len(set(kinds)), kinds


def test_mixed_forms_and_case_variants_still_one_confirm(client, sent):
    for i, path in enumerate(["/api/v1/forms/newsletter", "/api/v1/forms/volunteer-interest",
                              "/api/v1/forms/donation-inquiry"] * 3):
        body = {"/api/v1/forms/newsletter": newsletter_body, "/api/v1/forms/volunteer-interest": volunteer_body,
                "/api/v1/forms/donation-inquiry": donation_body}[path]
        email = "Target@Example.org" if i % 2 else "target@example.org"
        assert client.post(path, json=body(email=email, newsletter=True)).status_code == 202
    confirms = [m for m in _to(sent(), "@example.org") if "/confirm/" in _text(m)]
    assert len(confirms) == 1


def test_fresh_link_requests_send_one_email(client, session, sent):
    make_contact(session, email="known@example.org", lists={"newsletter": "confirmed"})
    session.commit()
    session.close()
    for _ in range(6):
        assert client.post("/links/resend", data={"email": "known@example.org"}).status_code == 200
    assert len(_to(sent(), "known@example.org")) == 1


# --- 6. origins and content types ----------------------------------------------------------------


def _site_client(settings: Any, tmp_path: Any) -> TestClient[Any]:
    return TestClient(app=create_app(make_settings(tmp_path, settings.database_url, allowed_origins=SITE)),
                      base_url="http://testserver.local")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json",
                                          "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("form", FORMS)
def test_an_unlisted_origin_is_refused_whatever_the_content_type(settings, session, tmp_path, form, content_type):
    path, body = FORMS[form]
    import json

    with _site_client(settings, tmp_path) as c:
        r = c.post(path, content=json.dumps(body()), headers={"Origin": "https://evil.example",
                                                             "Content-Type": content_type})
        assert r.status_code == 403
        assert r.json()["status_code"] == 403
        r = c.post("/links/resend", data={"email": "a@example.org"}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
    assert session.scalars(select(FormSubmission)).first() is None


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json", ""])
@pytest.mark.parametrize("form", FORMS)
def test_public_json_posts_take_only_json(settings, session, tmp_path, form, content_type):
    path, body = FORMS[form]
    import json

    with _site_client(settings, tmp_path) as c:
        r = c.post(path, content=json.dumps(body()), headers={"Origin": SITE, "Content-Type": content_type})
        assert r.status_code == 415
        assert "json" in r.json()["detail"]
        ok = c.post(path, content=json.dumps(body()),
                    headers={"Origin": SITE, "Content-Type": "application/json; charset=utf-8"})
        assert ok.status_code == 202
        pre = c.options(path, headers={"Origin": SITE, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code in (200, 204)
    assert len(session.scalars(select(FormSubmission)).all()) == 1


def test_the_app_s_own_pages_may_post(settings, session, tmp_path):
    with _site_client(settings, tmp_path) as c:
        r = c.post("/links/resend", data={"email": "a@example.org"}, headers={"Origin": "http://testserver.local"})
        assert r.status_code == 200


# --- 7. no 5xx from bad input --------------------------------------------------------------------

NASTY: list[Any] = [
    "[" * 1500 + "]" * 1500,
    '{"email": ' + "[" * 1500 + "]" * 1500 + "}",
    '{"email": "a@example.org", "interests": ' + '{"a":' * 1200 + "1" + "}" * 1200 + "}",
    '{"email": "a@example.org", "consent": true, "frequency": 1e999999}',
    '{"email": "a@example.org", "consent": true, "first_name": ' + "9" * 5000 + "}",
    '{"email": "' + "a" * 60000 + '@example.org"}',
    '{"email": "a@example.org", "first_name": "' + "x" * 60000 + '"}',
    '{"email": "a@example.org", "consent": true, "interests": [' + ",".join(["1e308"] * 100) + "]}",
    "{",
    '"just a string"',
    "\xff\xfe",
]


@pytest.mark.parametrize("raw", NASTY, ids=range(len(NASTY)))
@pytest.mark.parametrize("form", FORMS)
def test_bad_bodies_get_400_never_500(client, form, raw):
    path, _ = FORMS[form]
    r = client.post(path, content=raw.encode("utf-8", "surrogateescape"),
                    headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    if r.status_code == 400:
        assert r.json()["errors"]


@pytest.mark.parametrize("token", ["x" * 60000, "1" * 40, "-1", "99999999999999999999", "%00", "..%2F..",
                                   "a.b.c", "eyJ" + "A" * 500, "0"])
@pytest.mark.parametrize("route", ["/preferences/{t}", "/api/v1/preferences/{t}", "/unsubscribe/{t}",
                                   "/confirm/{t}"])
def test_odd_tokens_get_4xx_pages(client, route, token):
    r = client.get(route.format(t=token))
    assert 400 <= r.status_code < 500
    r = client.post(route.format(t=token), data={"List-Unsubscribe": "One-Click"})
    assert 400 <= r.status_code < 500
    r = client.put(route.format(t=token), json={"language": "es"})
    assert 400 <= r.status_code < 500


def test_nested_json_on_the_preferences_api_is_400(client):
    r = client.put("/api/v1/preferences/abc", content=("[" * 1500 + "]" * 1500).encode(),
                   headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500


# --- 9. every accepted address can be mailed ----------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_non_ascii_local_part_is_refused_with_400(client, sent, form):
    path, body = FORMS[form]
    r = client.post(path, json=body(email="josé@example.org"))
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"email"}
    assert sent() == []


def test_a_non_ascii_local_part_is_refused_by_the_fresh_link_form(client):
    assert client.post("/links/resend", data={"email": "josé@example.org"}).status_code == 400


def test_successful_form_answers_carry_no_retry_after(client):
    r = client.post("/api/v1/forms/newsletter", json=newsletter_body())
    assert r.status_code == 202
    assert "retry-after" not in r.headers


def test_pages_send_charset_once(client):
    r = client.get("/links/resend")
    assert r.headers["content-type"].lower().count("charset") == 1
