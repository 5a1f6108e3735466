"""Render once, personalise many: the fast fill gives what a full render would, byte for byte."""

from __future__ import annotations

import email
from email import policy
from html import unescape

from crm.campaigns.compose import LanguageRenderer, Links, MessageBuilder, Person, Tracker
from crm.mail import compile_email
from tests.helpers import html_of, text_of


def renderer(settings, **staff) -> LanguageRenderer:
    links = Links(settings)
    versions = {"subject": "Hola {{ contact.first_name }} ¿qué tal? — noticias", "body_html": None,
                "body_text": None, **staff}
    return LanguageRenderer(settings, compile_email(settings, "campaign", "es"), "es",
                            {"campaign": {"name": "n", "subject": "s"}, "items": []}, versions, links,
                            Tracker(links, False, False), None, False)


def test_fast_fill_equals_a_full_render(settings):
    r = renderer(settings, body_html="<p>Querida {{ contact.first_name }} &amp; {{ contact.last_name }}</p>")
    assert r.fast
    person = Person(contact_id=7, delivery_id=9, email="a@example.org", first_name="Ana <b>", last_name="O'Neil",
                    language="es", role=None)
    fast = r.render(person)
    r.fast = False
    slow = r.render(person)
    assert (fast.subject, fast.text) == (slow.subject, slow.text)
    # The same document; only the serialiser's choice of entity for a quote may differ.
    assert unescape(fast.html) == unescape(slow.html)
    assert "Ana &lt;b&gt;" in fast.html and "Ana <b>" in fast.text


def test_a_template_that_branches_on_the_person_takes_the_exact_path(settings):
    r = renderer(settings, body_html="{% if contact.first_name %}<p>Hi {{ contact.first_name }}</p>{% endif %}")
    assert not r.fast
    empty = Person(contact_id=1, delivery_id=1, email="b@example.org", first_name="", last_name="",
                   language="es", role=None)
    assert "Hi" not in r.render(empty).html


def test_hand_built_bytes_parse_as_a_proper_email(settings):
    r = renderer(settings, body_html="<p>" + "Línea larga " * 200 + "</p>\n<p>.starts with a dot</p>")
    person = Person(contact_id=1, delivery_id=1, email="c@example.org", first_name="Zoë", last_name="",
                    language="es", role=None)
    data = MessageBuilder(settings).build(person.email, r.render(person), "<x@example.org>",
                                          {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    assert all(line.endswith(b"\r") or not line for line in data.split(b"\n")[:-1])  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == "Hola Zoë ¿qué tal? — noticias"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Línea larga" in text_of(msg) and "Línea larga" in html_of(msg)  # type: ignore[arg-type]
