"""Staff API for campaigns, the bounce webhook and tracking links, over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from crm.campaigns import pipeline, planning, service
from crm.campaigns.models import Delivery
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.mail import MemorySender
from tests.factories import make_contact
from tests.helpers import html_of

BODY = {"name": "Spring appeal", "subject": "News for {{ contact.first_name }}", "list": "newsletter",
        "body_html": "<p>Hello {{ contact.first_name }}</p><p><a href=\"https://example.org/a?x=1&y=2\">Read</a></p>"}


def create(client: Any, auth: Any, **over: Any) -> dict[str, Any]:
    r = client.post("/api/v1/campaigns", headers=auth("editor"), json={**BODY, **over})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_editors_write_viewers_read_strangers_nothing(client, auth):
    c = create(client, auth)
    assert c["state"] == "draft" and c["template"] == "campaign" and c["list"] == "newsletter"
    assert client.get("/api/v1/campaigns").status_code == 401
    assert client.post("/api/v1/campaigns", headers=auth("viewer"), json=BODY).status_code == 403
    assert client.post(f"/api/v1/campaigns/{c['id']}/launch", headers=auth("viewer")).status_code == 403
    r = client.get("/api/v1/campaigns", headers=auth("viewer"))
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [c["id"]]
    assert r.json()["next_cursor"] is None
    r = client.patch(f"/api/v1/campaigns/{c['id']}", headers=auth("editor"), json={"subject": "Changed"})
    assert r.status_code == 200 and r.json()["subject"] == "Changed"
    assert client.get(f"/api/v1/campaigns/{c['id']}", headers=auth("viewer")).json()["subject"] == "Changed"
    assert client.get("/api/v1/campaigns/999", headers=auth("viewer")).status_code == 404


def test_bad_input_names_each_field(client, auth):
    r = client.post("/api/v1/campaigns", headers=auth("editor"),
                    json={"subject": "a\nb", "list": "nope", "template": "missing", "body_html": "{% if %}",
                          "colour": "red"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) >= {"name", "subject", "list", "template", "body_html", "colour"}
    c = create(client, auth)
    r = client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=auth("editor"), json={"send_at": "soon"})
    assert r.status_code == 400 and "send_at" in r.json()["errors"]


def test_lifecycle_and_illegal_moves_are_409_naming_the_state(client, auth, settings):
    make_contact_confirmed(settings, "a@example.org")
    c = create(client, auth)
    base = f"/api/v1/campaigns/{c['id']}"
    r = client.post(f"{base}/pause", headers=auth("editor"))
    assert r.status_code == 409 and "draft" in r.json()["detail"]
    r = client.post(f"{base}/schedule", headers=auth("editor"), json={"send_at": "2099-01-01T09:00:00Z"})
    assert r.status_code == 200 and r.json()["state"] == "scheduled"
    r = client.post(f"{base}/launch", headers=auth("editor"))
    assert r.status_code == 202 and r.json()["state"] == "sending"
    assert client.post(f"{base}/launch", headers=auth("editor")).status_code == 202  # idempotent
    assert client.post(f"{base}/pause", headers=auth("editor")).json()["state"] == "paused"
    r = client.patch(base, headers=auth("editor"), json={"subject": "Fixed typo"})
    assert r.status_code == 200
    assert client.post(f"{base}/resume", headers=auth("editor")).json()["state"] == "sending"
    assert client.post(f"{base}/cancel", headers=auth("editor")).json()["state"] == "cancelled"
    r = client.post(f"{base}/resume", headers=auth("editor"))
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    r = client.patch(base, headers=auth("editor"), json={"subject": "Too late"})
    assert r.status_code == 409


def make_contact_confirmed(settings: Any, email: str, **kw: Any) -> int:
    with session_scope(settings) as s:
        return make_contact(s, email=email, lists={"newsletter": "confirmed"}, **kw).id  # type: ignore[return-value]


def test_ten_concurrent_launches_give_one_run(client, auth, settings):
    make_contact_confirmed(settings, "a@example.org")
    cid = create(client, auth)["id"]
    results: list[bool] = []
    barrier = threading.Barrier(10)

    def go() -> None:
        barrier.wait()
        with session_scope(settings) as s:
            results.append(service.launch(s, settings, cid)[1])

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True]


def test_test_send_goes_only_to_the_listed_addresses(client, auth, settings):
    make_contact_confirmed(settings, "member@example.org")
    cid = create(client, auth)["id"]
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"),
                    json={"emails": ["editor@staff.example.org"]})
    assert r.status_code == 202
    [msg] = MemorySender.outbox
    assert str(msg["To"]).strip("<>") == "editor@staff.example.org"
    assert str(msg["Subject"]).startswith("[TEST] ")
    assert client.get(f"/api/v1/campaigns/{cid}", headers=auth("viewer")).json()["state"] == "draft"
    with session_scope(settings) as s:
        assert s.scalars(select(Delivery)).first() is None
    r = client.post(f"/api/v1/campaigns/{cid}/test", headers=auth("editor"), json={"emails": ["not an address"]})
    assert r.status_code == 400


def test_stats_count_in_sql(client, auth, settings):
    ids = [make_contact_confirmed(settings, f"s{i}@example.org") for i in range(4)]
    cid = create(client, auth, track_opens=True, track_clicks=True)["id"]
    assert client.post(f"/api/v1/campaigns/{cid}/launch", headers=auth("editor")).status_code == 202
    planning.plan(settings, cid)
    pipeline.send_some(settings, cid)
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=auth("viewer")).json()
    assert stats.pop("state") == client.get(f"/api/v1/campaigns/{cid}", headers=auth("viewer")).json()["state"]
    assert stats == {"recipients": 4, "queued": 0, "sent": 4, "failed": 0, "bounced": 0, "unsubscribed": 0,
                     "opened": 0, "clicked": 0, "skipped": 0, "cancelled": 0, "paused_reason": None,
                     "complained": 0, "failure_rate": 0.0, "complaint_rate": 0.0}
    # Engagement through the signed links in the email itself.
    import re

    # Claims are not ordered: take the first contact's own email.
    html = html_of(next(m for m in MemorySender.outbox if m["To"] == "s0@example.org"))
    pixel = re.search(r'/track/open/([^"]+)"', html).group(1)  # type: ignore[union-attr]
    click = re.search(r'href="http://testserver.local(/track/click/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert "/unsubscribe/" in html  # own links stay direct
    assert client.get(f"/track/open/{pixel}").headers["content-type"] == "image/gif"
    r = client.get(click, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://example.org/a?x=1&y=2"
    assert client.get(click[:-3] + "abc", follow_redirects=False).status_code == 400  # tampered: no redirect
    # One-click unsubscribe after the send counts as unsubscribed.
    with session_scope(settings) as s:
        sub = contacts.subscription(s, ids[1], "newsletter")
        contacts.set_subscription_state(s, sub, "unsubscribed")  # type: ignore[arg-type]
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=auth("viewer")).json()
    assert (stats["opened"], stats["clicked"], stats["unsubscribed"]) == (1, 1, 1)
    with session_scope(settings) as s:
        assert s.get(Contact, ids[0]).last_engaged_at is not None  # type: ignore[union-attr]


def test_tracking_is_off_by_default(client, auth, settings):
    make_contact_confirmed(settings, "t@example.org")
    cid = create(client, auth)["id"]
    client.post(f"/api/v1/campaigns/{cid}/launch", headers=auth("editor"))
    planning.plan(settings, cid)
    pipeline.send_some(settings, cid)
    html = html_of(MemorySender.outbox[0])
    assert "/track/" not in html and 'href="https://example.org/a?x=1&amp;y=2"' in html


HOOK = "/api/v1/webhooks/bounces"


def test_bounce_webhook_needs_the_secret(client):
    assert client.post(HOOK, json={"events": []}).status_code == 401
    assert client.post(HOOK, json={"events": []}, headers={"X-CRM-Webhook-Secret": "wrong"}).status_code == 401
    r = client.post(HOOK, json={"events": [{"type": "bounce", "email": "nobody@example.org"}]},
                    headers={"X-CRM-Webhook-Secret": "test-webhook-secret"})
    assert r.status_code == 200


def test_hard_bounces_and_complaints_suppress_soft_ones_score(client, settings):
    hard = make_contact_confirmed(settings, "hard@example.org")
    make_contact_confirmed(settings, "angry@example.org")
    make_contact_confirmed(settings, "soft@example.org")
    with session_scope(settings) as s:
        from crm.campaigns.models import Campaign

        camp = Campaign(name="x", subject="y", state="sent")
        s.add(camp)
        s.flush()
        s.add(Delivery(campaign_id=camp.id, contact_id=hard, status="sent", message_id="<m1@example.org>"))
    secret = {"X-CRM-Webhook-Secret": "test-webhook-secret"}
    events = [{"type": "bounce", "email": "HARD@example.org", "bounce_type": "hard", "message_id": "m1@example.org"},
              {"type": "complaint", "email": "angry@example.org"}]
    assert client.post(HOOK, json={"events": events}, headers=secret).status_code == 200
    for _ in range(settings.soft_bounce_threshold - 1):
        client.post(HOOK, json={"events": [{"type": "bounce", "email": "soft@example.org", "bounce_type": "soft"}]},
                    headers=secret)
    with session_scope(settings) as s:
        assert contacts.suppression_reason(s, "hard@example.org") == "bounced"
        assert contacts.suppression_reason(s, "angry@example.org") == "complained"
        assert contacts.suppression_reason(s, "soft@example.org") is None
        assert s.scalars(select(Delivery.status)).one() == "bounced"
        statuses = dict(s.execute(select(Contact.email_key, Contact.status)).tuples().all())
        assert statuses["hard@example.org"] == "bounced" and statuses["angry@example.org"] == "complained"
    client.post(HOOK, json={"events": [{"type": "bounce", "email": "soft@example.org", "bounce_type": "soft"}]},
                headers=secret)
    with session_scope(settings) as s:
        assert contacts.suppression_reason(s, "soft@example.org") == "bounced"
    r = client.post(HOOK, json={"events": [{"type": "wat", "email": ""}]}, headers=secret)
    assert r.status_code == 400 and "events[0].type" in r.json()["errors"]
