"""RFC 8058 one-click unsubscribe, as Gmail's and Yahoo's bulk-sender rules exercise it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from crm.contacts import service as contacts
from crm.contacts.models import ConsentEvent, Contact
from crm.db import session_scope
from tests.helpers import link_path, newsletter_body, to

ONE_CLICK = "List-Unsubscribe=One-Click"


def _state(settings, cid):
    with session_scope(settings) as s:
        c = s.get(Contact, cid)
        return (c.status, {k: v.state for k, v in contacts.subscriptions_of(s, cid).items()},
                contacts.suppression_reason(s, c.email_key))


def _events(settings, cid):
    with session_scope(settings) as s:
        return list(s.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == cid,
                                                         ConsentEvent.action == "unsubscribe")))


def test_get_and_head_change_nothing(client, settings, person, link):
    cid = person(lists={"newsletter": "confirmed", "volunteer-updates": "confirmed"})
    before = _state(settings, cid)
    path = link(cid, "unsubscribe")
    page = client.get(path)
    assert page.status_code == 200
    assert page.text.count("<button") == 1 and 'method="post"' in page.text
    head = client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert _state(settings, cid) == before == ("active", {"newsletter": "confirmed",
                                                          "volunteer-updates": "confirmed"}, None)
    assert _events(settings, cid) == []


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_and_stays_200(client, settings, person, link, kind):
    cid = person(lists={"newsletter": "confirmed", "donor-updates": "pending"})
    path = link(cid, "unsubscribe")
    headers = {"User-Agent": "Gmail-One-Click/1.0"}
    if kind == "urlencoded":
        def send():
            return client.post(path, content=ONE_CLICK, headers={**headers,
                               "Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    else:
        def send():
            return client.post(path, files={"List-Unsubscribe": (None, "One-Click")}, headers=headers,
                               follow_redirects=False)
    first = send()
    assert first.status_code == 200 and "You are unsubscribed" in first.text
    assert "set-cookie" not in first.headers
    # Committed before the answer: a fresh session sees it.
    assert _state(settings, cid) == ("unsubscribed", {"newsletter": "unsubscribed", "donor-updates": "unsubscribed"},
                                     "unsubscribed")
    events = _events(settings, cid)
    assert events and {e.source for e in events} == {"one-click"}
    assert {e.user_agent for e in events} == {"Gmail-One-Click/1.0"} and all(e.client_ip for e in events)
    second = send()
    assert second.status_code == 200
    assert len(_events(settings, cid)) == len(events)  # nothing new to record


def test_the_pages_own_button_works_without_cookies(client, settings, person, link):
    cid = person()
    path = link(cid, "unsubscribe")
    r = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    assert _state(settings, cid)[0] == "unsubscribed"


def test_the_link_in_a_real_email_works_a_month_later(client, settings, sent):
    client.post("/api/v1/forms/newsletter", json=newsletter_body())
    [confirm] = to(sent(), "ana@example.org")
    client.get(link_path(confirm, "confirm"))
    welcome = to(sent(), "ana@example.org")[-1]
    path = link_path(welcome, "unsubscribe")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=31), tick=False):
        assert client.get(path).status_code == 200
        assert client.post(path, content=ONE_CLICK,
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    with session_scope(settings) as s:
        c = s.scalars(select(Contact).where(Contact.email_key == "ana@example.org")).one()
        assert c.status == "unsubscribed"
        assert not contacts.is_mailable(s, c.id, "newsletter")


def test_unsubscribe_links_outlive_a_year_and_preference_links_expire(client, person, link, settings):
    cid = person()
    unsubscribe, preferences = link(cid, "unsubscribe"), link(cid, "preferences")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.preferences_token_days + 1)
    with time_machine.travel(later, tick=False):
        assert client.get(preferences).status_code == 410
        assert client.get(unsubscribe).status_code == 200
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=366), tick=False):
        assert client.get(unsubscribe).status_code == 200


def test_a_bad_token_changes_nothing(client, settings, person, link):
    cid = person()
    path = link(cid, "unsubscribe")
    r = client.post(path[:-2] + ("xx" if not path.endswith("xx") else "yy"), content=ONE_CLICK,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert _state(settings, cid)[0] == "active"
