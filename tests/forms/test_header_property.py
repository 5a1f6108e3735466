"""Every free-text field of every public form, fed line breaks in every encoding the email package
decodes: each post is a 202 or a 400 naming the field, and every message it causes (the person's
acknowledgement, the staff notice) has exactly one of each header and none the attacker wrote."""

from __future__ import annotations

import itertools
from email import message_from_bytes
from email.policy import SMTP

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from crm.mail import MemorySender
from tests.helpers import donation_body, drain_outbox, volunteer_body

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c", "\x1d", "\x1e"]
ENCODED = ["=?utf-8?q?x=0D=0ABcc:_evil@example.net?=", "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUubmV0?=",
           "=?iso-8859-1?q?x=0ABcc:evil@example.net?=", "=?utf-8?Q?=0D=0AReply-To:_evil@example.net?="]
FIELDS = [("volunteer", f) for f in ("first_name", "last_name", "message", "skills")] + \
         [("donation", f) for f in ("first_name", "last_name", "message", "in_honor_of", "amount_range")]
counter = itertools.count()


def _payloads() -> st.SearchStrategy[str]:
    injected = st.sampled_from([*[b + "Bcc: evil@example.net" for b in BREAKS], *ENCODED,
                                *[b + "Reply-To: evil@example.net" for b in BREAKS]])
    return st.tuples(st.text(max_size=12), injected, st.text(max_size=12)).map("".join)


def _body(form: str, field: str, value: str, email: str) -> dict:
    if form == "volunteer":
        return volunteer_body(email=email, **{field: [value] if field == "skills" else value})
    return donation_body(email=email, **{field: value})


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(FIELDS), value=_payloads())
def test_no_form_field_adds_a_header_to_any_email(client, settings, where, value):
    form, field = where
    MemorySender.outbox.clear()
    email = f"p{next(counter)}@example.org"
    path = "/api/v1/forms/volunteer-interest" if form == "volunteer" else "/api/v1/forms/donation-inquiry"
    r = client.post(path, json=_body(form, field, value, email))
    assert r.status_code in (202, 400), r.text
    if r.status_code == 400:
        assert field in r.json()["errors"]
        return
    messages = drain_outbox(settings)
    assert messages, "an accepted post always mails someone (the person or the staff notice)"
    for sent in messages:
        parsed = message_from_bytes(sent.as_bytes(), policy=SMTP)
        names = [k.lower() for k in parsed]
        assert len(names) == len(set(names)), names  # exactly one of each
        assert "bcc" not in names and "cc" not in names
        assert all("evil@example.net" not in str(parsed.get(h, "")) for h in ("To", "Cc", "Reply-To", "From"))
