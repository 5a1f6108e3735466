"""Tokens in email links: scoped to one contact and one purpose, tamper-evident, expiring."""

from __future__ import annotations

import time

import pytest

from crm.links import token_for, url_for
from crm.tokens import TokenError, make_token, read_token
from tests.factories import make_contact
from tests.helpers import link_path, newsletter_body, to

SECRET = "s3cret"


def test_round_trip():
    token = make_token(SECRET, 42, "confirm", 60)
    claims = read_token(SECRET, token, "confirm")
    assert (claims.contact_id, claims.purpose) == (42, "confirm")


def test_token_for_one_purpose_never_opens_another():
    token = make_token(SECRET, 42, "preferences", 60)
    for purpose in ("confirm", "unsubscribe", "click", "open", "respond"):
        with pytest.raises(TokenError) as exc:
            read_token(SECRET, token, purpose)  # type: ignore[arg-type]
        assert exc.value.reason == "wrong-purpose"


def test_other_secret_is_tampered():
    token = make_token(SECRET, 42, "confirm", 60)
    with pytest.raises(TokenError) as exc:
        read_token("another", token, "confirm")
    assert exc.value.reason == "tampered"


def test_changing_the_contact_id_is_tampered():
    import base64

    token = make_token(SECRET, 42, "confirm", 60)
    body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"42:", b"43:", 1)
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + sig
    with pytest.raises(TokenError) as exc:
        read_token(SECRET, forged, "confirm")
    assert exc.value.reason == "tampered"


@pytest.mark.parametrize("index", [0, 5, -1, -3])
def test_any_flipped_character_is_refused(index):
    token = make_token(SECRET, 42, "confirm", 60)
    chars = list(token)
    chars[index] = "A" if chars[index] != "A" else "B"
    with pytest.raises(TokenError):
        read_token(SECRET, "".join(chars), "confirm")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "%%%.%%%", "bm90OmFuOmludA.AAAA"])
def test_malformed(garbage):
    with pytest.raises(TokenError):
        read_token(SECRET, garbage, "confirm")


def test_expiry():
    now = time.time()
    token = make_token(SECRET, 42, "confirm", 60, now=now)
    assert read_token(SECRET, token, "confirm", now=now + 59).contact_id == 42
    with pytest.raises(TokenError) as exc:
        read_token(SECRET, token, "confirm", now=now + 61)
    assert exc.value.reason == "expired"


def test_link_lifetimes_follow_settings(settings):
    before = time.time()
    confirm = read_token(settings.secret_key, token_for(settings, 1, "confirm"), "confirm")
    unsub = read_token(settings.secret_key, token_for(settings, 1, "unsubscribe"), "unsubscribe")
    assert abs(confirm.expires_at - before - settings.confirm_token_days * 86400) < 5
    assert unsub.expires_at - before > 365 * 86400


# --- over HTTP: the confirm page ---------------------------------------------------------------


def test_preferences_token_does_not_open_confirm(client, session, settings):
    c = make_contact(session, email="ana@example.org", lists={"newsletter": "pending"})
    session.commit()
    assert c.id is not None
    prefs = url_for(settings, c.id, "preferences").split("/preferences/")[1]
    r = client.get(f"/confirm/{prefs}")
    assert 400 <= r.status_code < 500
    assert "text/html" in r.headers["content-type"]
    from crm.contacts import service as contacts

    session.expire_all()
    assert contacts.subscriptions_of(session, c.id)["newsletter"].state == "pending"


def test_tampered_and_expired_confirm_links_get_a_plain_4xx_page(client, session, settings):
    c = make_contact(session, email="ana@example.org", lists={"newsletter": "pending"})
    session.commit()
    assert c.id is not None
    token = token_for(settings, c.id, "confirm")
    tampered = client.get(f"/confirm/{token[:-2]}xx")
    assert 400 <= tampered.status_code < 500
    expired = make_token(settings.secret_key, c.id, "confirm", -10)  # type: ignore[arg-type]
    r = client.get(f"/confirm/{expired}")
    assert 400 <= r.status_code < 500
    assert "expired" in r.text.lower()


def test_confirm_is_idempotent_and_welcomes_once(client, settings, sent, session):
    client.post("/api/v1/forms/newsletter", json=newsletter_body())
    [confirm] = to(sent(), "ana@example.org")
    path = link_path(confirm, "confirm")
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    subjects = [m["Subject"] for m in to(sent(), "ana@example.org")]
    assert subjects == ["Please confirm your subscription", "Welcome: you are subscribed"]
    welcome = to(sent(), "ana@example.org")[1]
    assert link_path(welcome, "preferences") and link_path(welcome, "unsubscribe")
    from sqlalchemy import select

    from crm.contacts.models import ConsentEvent

    actions = list(session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.id)))
    assert actions == ["signup", "confirm"]
