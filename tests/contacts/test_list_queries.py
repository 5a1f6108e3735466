"""A page of contacts costs the same number of statements whatever its size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from crm.config import Settings
from crm.db import get_engine, session_scope
from tests.factories import make_contact


@contextmanager
def counted(settings: Settings) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine(settings)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _statements_for_page(client: Any, auth: Any, settings: Settings, limit: int) -> tuple[int, int]:
    headers = auth("viewer")
    client.get("/api/v1/contacts?limit=1", headers=headers)  # the staff token is cached after this
    with counted(settings) as statements:
        r = client.get(f"/api/v1/contacts?limit={limit}", headers=headers)
    assert r.status_code == 200, r.text
    return len(r.json()["items"]), len(statements)


def test_contact_list_runs_a_fixed_number_of_statements(client: Any, auth: Any, settings: Settings) -> None:
    with session_scope(settings) as s:
        for i in range(110):
            make_contact(s, interests=["caregiving"] if i % 2 else [], tags=[f"t{i % 3}"],
                         lists={"newsletter": "confirmed"}, frequency="monthly")
    small_items, small = _statements_for_page(client, auth, settings, 5)
    large_items, large = _statements_for_page(client, auth, settings, 100)
    assert (small_items, large_items) == (5, 100)
    assert small == large
    # the staff token check and its bookkeeping, the page, then interests, tags and subscriptions
    assert large <= 8


def test_a_listed_contact_has_its_interests_tags_and_subscriptions(client: Any, auth: Any,
                                                                   settings: Settings) -> None:
    with session_scope(settings) as s:
        make_contact(s, email="ana@example.org", interests=["clinical-trials", "caregiving"], tags=["b", "a"],
                     lists={"newsletter": "confirmed"}, frequency="weekly")
        make_contact(s, email="ben@example.org")
    items = {c["email"]: c for c in client.get("/api/v1/contacts", headers=auth("viewer")).json()["items"]}
    assert items["ana@example.org"]["interests"] == ["caregiving", "clinical-trials"]
    assert items["ana@example.org"]["tags"] == ["a", "b"]
    assert items["ana@example.org"]["subscriptions"] == {"newsletter": "confirmed"}
    assert items["ana@example.org"]["frequency"] == "weekly"
    assert (items["ben@example.org"]["interests"], items["ben@example.org"]["frequency"]) == ([], None)
