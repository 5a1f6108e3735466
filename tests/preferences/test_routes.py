"""The pages and the JSON twin over HTTP: what a person clicking links from an email would see."""

from __future__ import annotations

from sqlalchemy import select

from crm.contacts import service as contacts
from crm.contacts.models import ConsentEvent, Contact
from crm.db import session_scope
from crm.links import token_for
from crm.tokens import make_token
from crm.volunteers import service as volunteers
from crm.volunteers.models import VolunteerEvent
from tests.helpers import link_path, newsletter_body, text_of, to


def _contact(settings, cid):
    with session_scope(settings) as s:
        c = s.get(Contact, cid)
        return {"contact": c, "interests": contacts.interests_of(s, cid),
                "subs": {k: v.state for k, v in contacts.subscriptions_of(s, cid).items()},
                "frequency": (contacts.subscription(s, cid, "newsletter") or c).__dict__.get("frequency"),
                "suppressed": contacts.suppression_reason(s, c.email_key)}


def test_confirm_page_says_what_was_signed_up_for_in_the_persons_language(client, sent):
    r = client.post("/api/v1/forms/newsletter", json=newsletter_body(language="es", frequency="monthly",
                                                                     interests=["caregiving"]))
    assert r.status_code == 202
    [confirm] = to(sent(), "ana@example.org")
    page = client.get(link_path(confirm, "confirm"))
    assert page.status_code == 200
    assert '<html lang="es">' in page.text
    assert "Boletín y resumen de artículos" in page.text and "resumen mensual" in page.text
    assert "Cuidado" in page.text or "cuidador" in page.text.lower()  # the interest's Spanish label
    assert "/preferences/" in page.text


def test_preferences_page_shows_and_saves_what_changed(client, settings, person, link):
    cid = person(first_name="Ana", interests=["caregiving"], frequency="weekly")
    path = link(cid, "preferences")
    page = client.get(path)
    assert page.status_code == 200 and '<html lang="en">' in page.text
    assert 'name="interests" value="caregiving" checked' in page.text
    assert "<legend>" in page.text and 'for="interest-caregiving"' in page.text
    r = client.post(path, data={"action": "save", "interests": ["caregiving", "clinical-trials"],
                                "frequency": "monthly", "lists": ["newsletter"], "language": "en"})
    assert r.status_code == 200
    assert "Saved. This is what changed:" in r.text
    assert "Clinical trials" in r.text and "Weekly &rarr; Monthly" in r.text
    state = _contact(settings, cid)
    assert state["interests"] == ["caregiving", "clinical-trials"] and state["frequency"] == "monthly"
    assert 'value="clinical-trials" checked' in client.get(path).text


def test_preferences_page_switches_language_on_save(client, settings, person, link):
    cid = person()
    path = link(cid, "preferences")
    r = client.post(path, data={"interests": [], "frequency": "weekly", "lists": ["newsletter"], "language": "es"})
    assert r.status_code == 200 and '<html lang="es">' in r.text and "Guardado" in r.text
    assert _contact(settings, cid)["contact"].language == "es"


def test_rejoining_from_the_page_says_check_your_inbox(client, settings, person, link, sent):
    cid = person(lists={"newsletter": "unsubscribed"})
    r = client.post(link(cid, "preferences"), data={"frequency": "weekly", "lists": ["newsletter"], "language": "en"})
    assert r.status_code == 200 and "Check your inbox." in r.text
    assert _contact(settings, cid)["subs"]["newsletter"] == "pending"
    [msg] = sent()
    assert msg["Subject"] == "Please confirm your subscription"


def test_volunteer_fields_on_the_page(client, settings, person, link):
    cid = person(volunteer=True, lists={"volunteer-updates": "confirmed"})
    path = link(cid, "preferences")
    page = client.get(path)
    assert 'id="area-events"' in page.text and 'type="date"' in page.text
    r = client.post(path, data={"frequency": "weekly", "lists": ["volunteer-updates"], "language": "en",
                                "areas": ["events", "office"], "availability": ["weekends"],
                                "paused_until": "2099-01-01"})
    assert r.status_code == 400 and "Nothing was saved" in r.text  # more than two years ahead
    r = client.post(path, data={"frequency": "weekly", "lists": ["volunteer-updates"], "language": "en",
                                "areas": ["events", "office"], "availability": ["weekends"]})
    assert r.status_code == 200 and "Office help" in r.text
    with session_scope(settings) as s:
        vol = volunteers.for_contact(s, cid)
        assert volunteers.areas_of(s, vol.id) == ["events", "office"]
        assert s.scalars(select(VolunteerEvent).where(VolunteerEvent.actor == "self")).first() is not None


def test_unsubscribe_everything_from_the_preference_centre(client, settings, person, link):
    cid = person(lists={"newsletter": "confirmed", "donor-updates": "confirmed"})
    r = client.post(link(cid, "preferences"), data={"action": "unsubscribe-all"})
    assert r.status_code == 200 and "You are unsubscribed from everything" in r.text
    state = _contact(settings, cid)
    assert state["subs"] == {"newsletter": "unsubscribed", "donor-updates": "unsubscribed"}
    assert state["contact"].status == "unsubscribed" and state["suppressed"] == "unsubscribed"
    with session_scope(settings) as s:
        sources = set(s.scalars(select(ConsentEvent.source).where(ConsentEvent.action == "unsubscribe")))
    assert sources == {"preferences"}


def test_json_twin_round_trips(client, settings, person, link):
    cid = person(first_name="Vic", volunteer=True, interests=["caregiving"])
    path = "/api/v1" + link(cid, "preferences")
    body = client.get(path).json()
    assert set(body) >= {"email", "first_name", "language", "interests", "frequency", "lists", "volunteer"}
    assert body["volunteer"] == {"areas": ["events"], "availability": ["weekends"], "paused_until": None,
                                 "shift_reminders": True}
    body["interests"] = ["clinical-trials"]
    body["frequency"] = "never"
    body["volunteer"]["paused_until"] = "2027-01-31"
    r = client.put(path, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["interests"] == ["clinical-trials"] and r.json()["frequency"] == "never"
    assert r.json()["volunteer"]["paused_until"] == "2027-01-31"
    assert client.get(path).json()["interests"] == ["clinical-trials"]
    # Sending back what GET gave changes nothing.
    again = client.put(path, json=client.get(path).json())
    assert again.status_code == 200 and again.json()["changed"] == []


def test_json_twin_names_bad_fields(client, person, link):
    cid = person()
    r = client.put("/api/v1" + link(cid, "preferences"),
                   json={"frequency": "hourly", "interests": ["nope"], "lists": {"newsletter": "yes"}})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"frequency", "interests", "lists.newsletter"}


def test_bad_links_get_a_plain_page_offering_a_fresh_link(client, settings, person, link):
    cid = person()
    good = link(cid, "preferences")
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for path in (tampered, "/preferences/garbage", link(cid, "unsubscribe").replace("unsubscribe", "preferences", 1),
                 "/unsubscribe/garbage", "/confirm/garbage"):
        r = client.get(path)
        assert r.status_code == 400, path
        assert "This link does not work" in r.text and 'action="/links/resend"' in r.text
    spanish = client.get(tampered, headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in spanish.text and "Este enlace no funciona" in spanish.text
    assert client.get("/api/v1/preferences/garbage").status_code == 400
    expired = "/preferences/" + make_token(settings.secret_key, cid, "preferences", -10)
    r = client.get(expired)
    assert r.status_code == 410 and "This link has expired." in r.text


def test_rotating_the_secret_revokes_every_link(client, settings, person, link, app):
    cid = person()
    path = link(cid, "unsubscribe")
    app.state.settings = settings.model_copy(update={"secret_key": "a-brand-new-secret"})
    assert client.get(path).status_code == 400


def test_fresh_link_answer_never_reveals_whether_an_address_is_known(client, person, sent):
    person(email="known@example.org", language="es")
    known = client.post("/links/resend", data={"email": "known@example.org"})
    unknown = client.post("/links/resend", data={"email": "stranger@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    [msg] = to(sent(), "known@example.org")
    assert msg["Subject"] == "Su enlace nuevo para administrar sus correos"
    assert "/preferences/" in text_of(msg) and "/unsubscribe/" in text_of(msg)
    assert msg["Auto-Submitted"] == "auto-generated"
    # The links in it work.
    assert client.get(link_path(msg, "preferences")).status_code == 200
    # A bot filling the honeypot gets the same answer and nothing is sent.
    bot = client.post("/links/resend", data={"email": "known@example.org", "website": "http://spam"})
    assert bot.status_code == 200 and bot.text == unknown.text
    assert len(to(sent(), "known@example.org")) == 1
    assert client.post("/links/resend", data={"email": "not-an-address"}).status_code == 400


def test_an_old_confirm_link_cannot_undo_an_unsubscribe(client, settings, person, link):
    cid = person(lists={"newsletter": "pending"})
    confirm = link(cid, "confirm")
    client.post(link(cid, "unsubscribe"))
    r = client.get(confirm)
    assert r.status_code == 400
    assert _contact(settings, cid)["subs"]["newsletter"] == "unsubscribed"


def test_token_for_purpose_is_scoped(settings, person):
    cid = person()
    assert token_for(settings, cid, "preferences") != token_for(settings, cid, "unsubscribe")


def test_fresh_link_form_is_rate_limited(settings):
    from litestar.testing import TestClient

    from crm.app import create_app

    app = create_app(settings.model_copy(update={"form_rate_limit": 2}))
    with TestClient(app=app, base_url="http://testserver.local") as c:
        answers = [c.post("/links/resend", data={"email": f"p{i}@example.org"}) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "retry-after" in answers[2].headers


def test_fresh_link_form_page_and_json(client, person, sent):
    person(email="json@example.org")
    page = client.get("/links/resend")
    assert page.status_code == 200 and 'name="email"' in page.text and 'name="website"' in page.text
    assert client.post("/links/resend", json={"email": "json@example.org"}).status_code == 200
    assert len(to(sent(), "json@example.org")) == 1
