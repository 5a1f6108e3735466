"""Quoted-printable with the campaign's repeated lines cached: the same bytes as encoding each text whole."""

from __future__ import annotations

import email
import random
from email import policy

import pytest

from crm.campaigns.compose import MessageBuilder, Person
from crm.campaigns.compose.wire import qp, qp_whole
from tests.campaigns.test_compose import renderer

LONG = "Living with cancer brings questions about treatment, side effects and everyday life, " * 4

CASES = [
    "", "\n", "one line", "ends with a line break\n", "two\nlines", "blank\n\n\nlines",
    LONG, LONG + "\n" + LONG, "x" * 75, "x" * 76, "x" * 77, "x" * 75 + "=", "x" * 74 + "é" * 3,
    "é" * 200, "Größe — ¿qué tal? 日本語 " * 10, "emoji 🎗️ in a line\n🎗️",
    "trailing space \nnext", "trailing tab\t\nnext", "trailing space at the end ", "trailing tab at the end\t",
    "x" * 74 + " \n" + "x" * 75 + " ", "x" * 75 + "\t", "  \n\t\n ", ".\nA lone dot\n.", "a = b\n=\n==",
    "From the start\nFrom here", "windows\r\nline\r\nends\r\n", "a bare\rcarriage return", "\r\n\r\n",
    "control \x00\x01\x7f chars", "<p style=\"color: #333; font-family: Arial, sans-serif\">" + LONG + "</p>\n",
]


@pytest.mark.parametrize("text", CASES)
def test_cached_lines_give_the_bytes_of_the_whole_text_encoder(text):
    assert qp(text) == qp_whole(text)
    assert qp(text) == qp_whole(text)  # again, from the cache


def test_random_texts_cold_and_warm():
    rng = random.Random(18)
    pieces = ["a", "word ", " ", "\t", "=", ".", "é", "—", "日本", "\n", "\r\n", "\r", "x" * 80, "_", "~", "\x7f"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    for text in texts + texts:  # the second pass reads the cache
        assert qp(text) == qp_whole(text), repr(text)


def test_whole_messages_on_the_wire_are_unchanged(settings):
    """Built messages, the cache warm from earlier people: each is what the whole-text encoder gives."""
    r = renderer(settings, body_html="<p>Querida {{ contact.first_name }} — " + LONG + " </p>\n<p>.</p>")
    builder = MessageBuilder(settings)
    people = [Person(contact_id=i, delivery_id=i, email=f"p{i}@example.org", first_name=name, last_name="",
                     language="es", role=None)
              for i, name in enumerate(["Ana", "Zoë", "Ana", "x" * 90, "Ana "])]
    for person in people:
        rendered = r.render(person)
        data = builder.build(person.email, rendered, f"<{person.delivery_id}@example.org>", {"X-CRM-Campaign": "1"})
        plain, html = qp_whole(rendered.text), qp_whole(rendered.html)
        assert plain in data and html in data
        assert data.endswith(b"quoted-printable\r\n\r\n" + html + b"\r\n--" + builder.boundary.encode() + b"--\r\n")
        msg = email.message_from_bytes(data, policy=policy.SMTP)
        parts = [p.get_content().replace("\r\n", "\n") for p in msg.iter_parts()]  # type: ignore[attr-defined]
        assert parts == [rendered.text.replace("\r\n", "\n"), rendered.html.replace("\r\n", "\n")]
