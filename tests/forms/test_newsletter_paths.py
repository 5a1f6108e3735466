"""The newsletter signup's two paths write the same rows: the generic one (a Core statement per row,
SQLite's) and PostgreSQL's one statement (crm.forms.newsletter_pg). Each case builds the same
starting state, runs one path, dumps every table the signup touches (the trigger-kept
mailable_subscription and mailable_interest included), then does the same with the other path.
On SQLite only the generic path exists; the cases still run there as behaviour checks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from crm.contacts import service as contacts
from crm.db import engine_for, is_postgres, session_scope
from crm.forms import service as forms
from crm.origin import RequestMeta
from tests.conftest import _clean
from tests.factories import make_contact
from tests.helpers import newsletter_body

TABLES = {
    "contact": "id", "event": "id", "event_unpublished": "event_id", "form_submission": "id",
    "contact_interest": "contact_id, interest_key", "subscription": "id", "consent_event": "id",
    "outbox_message": "id", "suppression": "email_hash", "mailable_subscription": "list, contact_id",
    "mailable_interest": "list, interest_key, contact_id",
}
META = RequestMeta("203.0.113.9", "Mozilla/5.0 (paths test)")
TOKEN = re.compile(r"/(confirm|preferences|unsubscribe)/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def _normal(value: Any) -> Any:
    """Timestamps are taken a few microseconds apart by the two paths: keep only whether one is set.
    Tokens carry their own expiry second; the dedupe key its ten-minute bucket."""
    if isinstance(value, dt.datetime):
        return "<time>"
    if isinstance(value, str):
        value = TOKEN.sub(r"/\1/<token>", value)
        return re.sub(r":\d+$", ":<bucket>", value) if value.startswith("w:") else value
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def dump(settings: Any) -> dict[str, list[dict[str, Any]]]:
    with engine_for(settings.database_url).connect() as conn:
        out = {}
        for table, order in TABLES.items():
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).mappings().all()
            out[table] = [{k: _normal(_json(v)) for k, v in row.items()} for row in rows]
        return out


def _json(value: Any) -> Any:
    import json

    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


Setup = Callable[[Session], None]


def _nothing(session: Session) -> None:
    pass


def _known(session: Session) -> None:
    # Known person: language and role set by staff, no first name, one interest, no newsletter yet.
    make_contact(session, email="Ana@Example.org", language="es", role="caregiver", interests=["caregiving"])


def _unsubscribed(session: Session) -> None:
    c = make_contact(session, email="ana@example.org", first_name="Ana", interests=["caregiving"],
                     lists={"newsletter": "unsubscribed"}, status="unsubscribed")
    contacts.suppress(session, c.email_key, "unsubscribed")


def _bounced(session: Session) -> None:
    c = make_contact(session, email="ana@example.org", lists={"newsletter": "confirmed"}, status="bounced")
    contacts.suppress(session, c.email_key, "bounced")


def _confirmed(session: Session) -> None:
    make_contact(session, email="ana@example.org", first_name="Ana", interests=["caregiving"],
                 lists={"newsletter": "confirmed", "volunteer-updates": "confirmed"}, frequency="monthly")


def _signed_up_once(session: Session) -> None:
    forms.submit_newsletter(session, _settings_for(session), newsletter_body(frequency="monthly"), META)


CASES: dict[str, tuple[Setup, dict[str, Any]]] = {
    "new": (_nothing, {"interests": ["caregiving", "clinical-trials"], "frequency": "weekly", "language": "en",
                       "role": "patient", "source_url": "https://www.charity.example/newsletter"}),
    "new-bare": (_nothing, {"interests": [], "first_name": None}),
    "existing": (_known, {"first_name": "Ana", "language": "en", "role": "patient",
                          "interests": ["clinical-trials", "caregiving"]}),
    "unsubscribed": (_unsubscribed, {"interests": ["research-news"], "frequency": "monthly"}),
    "bounced": (_bounced, {"interests": ["research-news"]}),
    "confirmed-resignup": (_confirmed, {"interests": ["research-news"], "frequency": "weekly"}),
    "resignup-within-window": (_signed_up_once, {"interests": ["advocacy"], "frequency": "weekly"}),
}


def _settings_for(session: Session) -> Any:
    return _CURRENT["settings"]


_CURRENT: dict[str, Any] = {}


def run(settings: Any, setup: Setup, body: dict[str, Any], path: Callable[..., list[int]] | None
        ) -> tuple[list[int], dict[str, list[dict[str, Any]]]]:
    _clean(settings.database_url)
    _CURRENT["settings"] = settings
    with session_scope(settings) as s:
        setup(s)
    with session_scope(settings) as s:
        data = newsletter_body(**body)
        if path is None:
            ids = forms.submit_newsletter(s, settings, data, META)
        else:
            ids = path(s, settings, forms.validate_newsletter(s, data), data, META)
    return ids, dump(settings)


@pytest.mark.parametrize("case", list(CASES))
def test_both_paths_write_the_same_rows(settings: Any, case: str) -> None:
    setup, body = CASES[case]
    ids, generic = run(settings, setup, body, forms._newsletter_statements)
    with session_scope(settings) as s:
        postgres = is_postgres(s)
    if postgres:
        pg_ids, one = run(settings, setup, body, forms._newsletter_one_statement)
        assert pg_ids == ids
        for table in TABLES:
            assert one[table] == generic[table], table
        _, default = run(settings, setup, body, None)
        assert default == one  # submit_newsletter takes the one-statement path on PostgreSQL
    _check_case(case, ids, generic)


def _check_case(case: str, ids: list[int], rows: dict[str, list[dict[str, Any]]]) -> None:
    """What each case must do, whichever path wrote it."""
    news = [s for s in rows["subscription"] if s["list"] == "newsletter"]
    assert len(news) == 1 and len(rows["contact"]) == 1
    assert [f["form"] for f in rows["form_submission"]][-1] == "newsletter"
    assert rows["consent_event"][-1]["action"] == "signup"
    if case == "unsubscribed":
        # Back to pending for the person's own confirm click, but the suppression stays and nobody
        # becomes mailable: a form post never lifts a suppression.
        assert news[0]["state"] == "pending" and news[0]["frequency"] == "monthly"
        assert [s["reason"] for s in rows["suppression"]] == ["unsubscribed"]
        assert rows["contact"][0]["status"] == "unsubscribed"
        assert rows["mailable_subscription"] == [] and rows["mailable_interest"] == []
        assert len(ids) == 1 and rows["outbox_message"][0]["template"] == "confirm"
    elif case == "bounced":
        assert ids == [] and rows["outbox_message"] == []
        assert [s["reason"] for s in rows["suppression"]] == ["bounced"]
        assert rows["mailable_subscription"] == []
    elif case == "confirmed-resignup":
        assert news[0]["state"] == "confirmed" and news[0]["frequency"] == "monthly"  # kept
        assert rows["outbox_message"][0]["template"] == "already-subscribed"
        # The new interest reached mailable_interest through the 0017 trigger, on both lists.
        assert {(m["list"], m["interest_key"]) for m in rows["mailable_interest"]} == {
            (lst, key) for lst in ("newsletter", "volunteer-updates") for key in ("caregiving", "research-news")}
    elif case == "existing":
        contact = rows["contact"][0]
        assert (contact["first_name"], contact["language"], contact["role"]) == ("Ana", "es", "caregiver")
        assert [e["type"] for e in rows["event"]] == ["form.submitted"]  # not created
        context = rows["outbox_message"][0]["context"]
        assert len(context["topics"]) == 2 and context["contact"]["language"] == "es"  # labels in Spanish
    elif case == "resignup-within-window":
        assert ids == [] and len(rows["outbox_message"]) == 1  # one confirm email per ten minutes
        assert len(rows["form_submission"]) == 2 and len(rows["consent_event"]) == 2
    else:
        assert [e["type"] for e in rows["event"]] == ["contact.created", "form.submitted"]
        assert len(rows["event_unpublished"]) == 2
        assert len(ids) == 1 and rows["outbox_message"][0]["template"] == "confirm"
