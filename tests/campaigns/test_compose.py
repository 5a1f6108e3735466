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
    # Look for the greeting as element text: "Hi" alone can occur inside a random link token.
    assert ">Hi" not in r.render(empty).html


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


DIGEST_ITEMS = [
    {"id": 1, "title": "Immunomodulators & <b>side effects</b>", "url": "https://example.org/a?x=1&y=2",
     "summary": "What to expect.\nWhen to call.", "date": "November 20, 2026", "topic_position": 2,
     "topic_label": "Treatment"},
    {"id": 2, "title": "Caring for a parent", "url": "https://example.org/b", "summary": "", "date": "",
     "topic_position": 1, "topic_label": "Caregiving"},
    {"id": 3, "title": "Trial news", "url": "https://example.org/c", "summary": "Phase II.", "date": "November 2, 2026",
     "topic_position": 2, "topic_label": "Treatment"},
]


def digest_renderer(settings, language: str, tracking: bool) -> LanguageRenderer:
    links = Links(settings)
    return LanguageRenderer(settings, compile_email(settings, "digest", language), language,
                            {"campaign": {"name": "n", "subject": "s"}, "items": []},
                            {"subject": "Novedades <esta> semana", "body_html": None, "body_text": None}, links,
                            Tracker(links, tracking, tracking), None, True)


def test_a_digest_joins_cached_item_fragments_into_what_a_full_render_gives(settings, time_machine):
    # The links carry signed tokens stamped to the second: the clock stands still, or a render that
    # crosses a second's boundary differs from its twin by a token.
    time_machine.move_to("2026-12-02T12:00:00Z", tick=False)
    for language in ("en", "es"):
        for tracking in (False, True):
            r = digest_renderer(settings, language, tracking)
            assert r.digest is not None  # the file template takes the cached-fragment path
            for first_name in ("Ana <b>", ""):
                person = Person(contact_id=7, delivery_id=9, email="a@example.org", first_name=first_name,
                                last_name="O'Neil", language=language, role=None, items=DIGEST_ITEMS)
                cached = [r.render(person) for _ in range(2)]  # the second from the caches
                frame, r.digest = r.digest, None
                exact = r.render(person)
                r.digest = frame
                for fast in cached:
                    assert (fast.subject, fast.html, fast.text) == (exact.subject, exact.html, exact.text)
            assert "Caregiving" in exact.text.split("Treatment")[0]  # grouped by topic, in topic order
            assert "&lt;b&gt;side effects" in exact.html and "Ana <b>" not in exact.html


def test_a_staff_written_digest_template_takes_the_exact_path(settings):
    links = Links(settings)
    compiled = compile_email(settings, "digest", "en")
    staff = type(compiled)(compiled.name, "en", compiled.subject,
                           compiled.html.environment.from_string("{% for i in items %}{{ i.title }}{% endfor %}"),
                           compiled.text)
    r = LanguageRenderer(settings, staff, "en", {"campaign": {"name": "n", "subject": "s"}, "items": []},
                         {"subject": "s", "body_html": None, "body_text": None}, links, Tracker(links, False, False),
                         None, True)
    assert r.digest is None
    person = Person(contact_id=7, delivery_id=9, email="a@example.org", first_name="", last_name="",
                    language="en", role=None, items=DIGEST_ITEMS)
    assert "Trial news" in r.render(person).html
