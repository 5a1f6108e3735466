"""Attacks on headers, staff templates and link keys, tried the way an attacker would."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import SMTP

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from crm.campaigns.compose import MessageBuilder, Rendered, staff_template
from crm.config import Settings
from crm.errors import Invalid
from crm.mail import HeaderInjection, Outgoing, RenderedEmail
from crm.mail.sandbox import BoundedSandbox, bounded_render
from crm.text import single_line
from crm.tokens import TokenError, make_token, read_token

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c"]
ENCODED = ["=?utf-8?q?x=0D=0ABcc:_evil@example.net?=", "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUubmV0?="]
TRANSACTIONAL = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}


def _payloads() -> st.SearchStrategy[str]:
    injected = st.sampled_from([*[b + "Bcc: evil@example.net" for b in BREAKS], *ENCODED,
                                "Reply-To: evil@example.net"])
    return st.tuples(st.text(max_size=20), injected, st.text(max_size=20)).map("".join)


@hsettings(max_examples=150, deadline=None)
@given(subject=_payloads())
def test_no_subject_adds_a_header_on_either_path(subject: str) -> None:
    """Every message built either refuses or carries exactly the headers it was given."""
    mail = Settings(mail_from="Hélpline <news@example.org>", timezone="Europe/Madrid")
    for build in (
        lambda: Outgoing("a@example.org", RenderedEmail(subject, "<p>x</p>", "x"), "<1@example.org>",
                         timezone=mail.timezone).build(mail.mail_from).as_bytes(),
        lambda: MessageBuilder(mail).build("a@example.org", Rendered(subject, "<p>x</p>", "x"),
                                           "<1@example.org>", {}),
    ):
        try:
            data = build()
        except HeaderInjection:
            continue
        parsed = message_from_bytes(data, policy=SMTP)
        assert {k.lower() for k in parsed} == TRANSACTIONAL
        assert "Bcc" not in str(parsed["Subject"]) or "\n" not in str(parsed["Subject"])


@pytest.mark.parametrize("value", [*("Ann" + b + "Bcc: x@y" for b in BREAKS), *ENCODED])
def test_single_line_fields_refuse_breaks_and_encoded_words(value: str) -> None:
    with pytest.raises(Invalid) as err:
        single_line(value, "first_name")
    assert "first_name" in err.value.fields


def test_campaign_from_is_encoded_and_date_is_zoned() -> None:
    mail = Settings(mail_from="Línea de Ayuda <news@example.org>", timezone="Europe/Madrid")
    data = MessageBuilder(mail).build("a@example.org", Rendered("Hi", "<p>x</p>", "x"), "<1@example.org>", {})
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"From: =?utf-8?" in head
    date = next(line for line in head.split(b"\r\n") if line.startswith(b"Date:"))
    assert not date.endswith(b"-0000") and (date.endswith(b"+0100") or date.endswith(b"+0200"))
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@pytest.mark.parametrize("source", [
    "{{ 7 ** 10000000 }}", "{{ 'x'.ljust(10**9) }}", "{{ 'x'.center(999999999) }}", "{{ 'x' * 10**9 }}",
    "{{ '%0999999999d' % 1 }}", "{{ '{:>999999999}'.format('x') }}", "{{ 'x'|indent(999999999) }}",
    "{{ 'x'|center(999999999) }}", "{{ ('x' * 100000).replace('', 'y' * 1000) }}",
    "{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x'|format }}{{ ('%*d')|format(999999999, 1) }}",
])
def test_staff_templates_are_bounded(source: str) -> None:
    """Each attack ends as a 400-style Invalid within the deadline, never a freeze or a MemoryError."""
    template = staff_template(source, html=False)
    with pytest.raises(Invalid) as err:
        bounded_render(lambda: template.render({}), "body_text", seconds=1.0)
    assert "body_text" in err.value.fields


def test_ordinary_templates_still_render() -> None:
    env = BoundedSandbox()
    out = env.from_string("{{ name|center(20) }} {{ 2 ** 10 }} {{ items|join(', ') }} {{ '%05d'|format(7) }}")
    assert out.render(name="Ann", items=["a", "b"]) == "        Ann          1024 a, b 00007"


def test_links_signed_with_an_earlier_key_still_open() -> None:
    old = make_token("old-key", 7, "unsubscribe", 3600)
    assert read_token(["new-key", "old-key"], old, "unsubscribe").contact_id == 7
    with pytest.raises(TokenError):
        read_token(["new-key"], old, "unsubscribe")
    settings = Settings(secret_key="new-key", secret_key_fallbacks="older, old-key")
    assert settings.verification_secrets() == ["new-key", "older", "old-key"]


def test_preview_of_a_bomb_is_a_400_over_http(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {"key": "bomb", "subject": "Hi", "body_text": "{{ 7 ** 10000000 }}", "body_html": "<p>x</p>"}
    response = client.post("/api/v1/templates", json=body, headers=auth("editor"))
    assert response.status_code in (400, 422)
    assert "template" in response.json()["errors"] or "body_text" in response.json()["errors"]
    assert client.get("/health").status_code == 200
