"""The contact search's two passes (newest rows first, then the index) and the form refill, directly."""

from __future__ import annotations

from crm.console.refill import refill
from crm.contacts import search as contacts
from tests.factories import make_contact


def test_a_substring_search_pages_the_same_across_the_recent_window(session, monkeypatch):
    monkeypatch.setattr(contacts, "RECENT_WINDOW", 7)
    made = [make_contact(session, email=f"{'match' if i % 3 == 0 else 'other'}{i}@example.org") for i in range(40)]
    session.flush()
    expected = [c.id for c in reversed(made) if c.email.startswith("match")]
    seen, after = [], None
    while True:
        rows, more = contacts.search(session, contacts.ContactFilters(q="MATCH"), after, 4)
        seen += [r.id for r in rows]
        if not more:
            break
        after = rows[-1].id
    assert seen == expected
    assert contacts.search(session, contacts.ContactFilters(q="100%_"), None, 4) == ([], False)  # LIKE escapes


def test_refill_touches_only_the_posted_form_and_never_hidden_fields():
    html = ('<form method="get" action="/staff/contacts"><input name="q" value=""></form>'
            '<form method="post" action="/staff/x"><input type="hidden" name="csrf_token" value="new">'
            '<input id="a" name="first_name" value="old"><input type="checkbox" name="i" value="a" checked>'
            '<input type="checkbox" name="i" value="b"><select name="s"><option value="1" selected>1</option>'
            '<option value="2">2</option></select><textarea name="t">old text</textarea>'
            '<input type="password" name="password" value=""></form>')
    out = refill(html, "/staff/x", {"first_name": ['Ann "A" <b>'], "i": ["b"], "s": ["2"], "t": ["new <text>"],
                                    "csrf_token": ["stale"], "password": ["secret"], "q": ["ignored"]})
    assert 'name="q" value=""' in out and 'value="new"' in out and "stale" not in out and "secret" not in out
    assert 'value="Ann &quot;A&quot; &lt;b&gt;"' in out
    assert 'value="a">' in out and 'value="b" checked' in out
    assert '<option value="1">' in out and '<option value="2" selected>' in out
    assert "<textarea name=\"t\">new &lt;text&gt;</textarea>" in out
