"""Property tests: email normalization, and CR/LF in every free-text field of the three forms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from crm.contacts.service import normalize_email
from crm.errors import Invalid
from tests.helpers import donation_body, newsletter_body, volunteer_body

FAST = hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(st.emails())
@hsettings(max_examples=200, deadline=None)
def test_normalization_is_idempotent_and_its_key_is_case_insensitive(address):
    try:
        n = normalize_email(address)
    except Invalid as exc:  # hypothesis' emails() allows forms email-validator refuses (e.g. special TLDs)
        assert set(exc.fields) == {"email"}
        return
    again = normalize_email(n.email)
    assert (again.email, again.key) == (n.email, n.key)
    assert n.key == n.email.lower()
    local, _, domain = address.rpartition("@")
    assert normalize_email(f"{local.swapcase()}@{domain.upper()}").key == n.key
    assert normalize_email(f"  {address}  ").key == n.key


@given(st.text(max_size=80))
@hsettings(max_examples=300, deadline=None)
def test_any_text_either_normalizes_or_is_refused_naming_email(raw):
    try:
        n = normalize_email(raw)
    except Invalid as exc:
        assert set(exc.fields) == {"email"}
        return
    assert "\r" not in n.email and "\n" not in n.email and "@" in n.email


# --- CR/LF in every free-text field --------------------------------------------------------------

PATHS = {"newsletter": "/api/v1/forms/newsletter", "volunteer": "/api/v1/forms/volunteer-interest",
         "donation": "/api/v1/forms/donation-inquiry"}
BODIES = {"newsletter": newsletter_body, "volunteer": volunteer_body, "donation": donation_body}
SINGLE_LINE = {
    "newsletter": ["email", "first_name", "source_url"],
    "volunteer": ["email", "first_name", "last_name", "phone", "postal_code", "source_url"],
    "donation": ["email", "first_name", "last_name", "phone", "amount_range", "in_honor_of", "source_url"],
}
MULTI_LINE = {"volunteer": ["message", "skills"], "donation": ["message"]}
SINGLE_CASES = [(form, f) for form, fields in SINGLE_LINE.items() for f in fields]
MULTI_CASES = [(form, f) for form, fields in MULTI_LINE.items() for f in fields]

safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=20)
breaks = st.sampled_from(["\r\n", "\n", "\r", "\r\n\r\n", "\n\t"])


@st.composite
def with_break(draw: Any) -> str:
    return f"{draw(safe_text)}{draw(breaks)}{draw(st.sampled_from(['Bcc: victim@example.org', 'X-Evil: 1', '']))}"


def _headers_clean(messages: list[Any]) -> None:
    for msg in messages:
        for name, value in msg.items():
            assert "\r" not in str(value) and "\n" not in str(value), (name, value)
            assert name.lower() not in ("bcc", "x-evil")


@pytest.mark.parametrize(("form", "field"), SINGLE_CASES)
@given(value=with_break())
@FAST
def test_line_breaks_in_single_line_fields_are_400_naming_the_field(client, sent, form, field, value):
    body = BODIES[form](**{field: f"ana@example.org{value}" if field == "email" else f"Ana{value}"})
    r = client.post(PATHS[form], json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"]
    assert sent() == []


@pytest.mark.parametrize("field", ["languages"])
@given(value=with_break())
@FAST
def test_line_breaks_in_list_items_are_400(client, field, value):
    r = client.post(PATHS["volunteer"], json=volunteer_body(**{field: ["English", f"Spanish{value}"]}))
    assert r.status_code == 400
    assert field in r.json()["errors"]


@pytest.mark.parametrize(("form", "field"), MULTI_CASES)
@given(value=with_break())
@FAST
def test_line_breaks_in_multi_line_fields_never_reach_a_header(client, sent, form, field, value):
    r = client.post(PATHS[form], json=BODIES[form](**{field: f"Hello{value}"}))
    assert r.status_code == 202, r.text
    _headers_clean(sent())


@given(first=safe_text, last=safe_text)
@FAST
def test_names_without_line_breaks_never_break_a_header(client, sent, first, last):
    r = client.post(PATHS["volunteer"], json=volunteer_body(first_name=f"V{first}", last_name=f"R{last}"))
    assert r.status_code in (202, 400)
    _headers_clean(sent())
