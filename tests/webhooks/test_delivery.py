"""Signed delivery to a real receiver on loopback, driven by the dispatcher in this process."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy import func, select, update

from crm.db import session_scope, utcnow
from crm.events import service as events
from crm.webhooks import claims, delivery, dispatcher, service
from crm.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.helpers import donation_body, link_path, newsletter_body, to, volunteer_body


def _due_now(settings: Any) -> None:
    """Skip the backoff wait (the schedule itself is tested below)."""
    with session_scope(settings) as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.state == "pending").values(next_attempt_at=utcnow()))


def _drain(settings: Any) -> None:
    dispatcher.run_until_idle(settings, dispatcher.Dispatcher(threads=4))


def test_endpoint_crud_secret_once_and_admin_only(client, auth, receivers):
    r = receivers()
    for role in ("editor", "viewer"):
        assert client.get("/api/v1/webhooks/endpoints", headers=auth(role)).status_code == 403
        assert client.post("/api/v1/webhooks/endpoints", headers=auth(role),
                           json={"url": r.url, "events": ["*"]}).status_code == 403
    assert client.get("/api/v1/webhooks/endpoints").status_code == 401
    resp = client.post("/api/v1/webhooks/endpoints", headers=auth(), json={"url": r.url, "events": ["contact.created"]})
    assert resp.status_code == 201
    body = resp.json()
    assert body["secret"].startswith("whsec_") and body["id"]
    got = client.get(f"/api/v1/webhooks/endpoints/{body['id']}", headers=auth()).json()
    assert "secret" not in got and got["events"] == ["contact.created"]
    assert "secret" not in str(client.get("/api/v1/webhooks/endpoints", headers=auth()).json())
    patched = client.patch(f"/api/v1/webhooks/endpoints/{body['id']}", headers=auth(),
                           json={"enabled": False, "events": ["*"]}).json()
    assert patched["enabled"] is False and patched["events"] == ["*"]
    bad = client.post("/api/v1/webhooks/endpoints", headers=auth(), json={"url": "ftp://x", "events": ["nope"]})
    assert bad.status_code == 400 and {"url", "events"} <= set(bad.json()["errors"])
    assert client.delete(f"/api/v1/webhooks/endpoints/{body['id']}", headers=auth()).status_code == 204
    assert client.get(f"/api/v1/webhooks/endpoints/{body['id']}", headers=auth()).status_code == 404


def test_events_arrive_signed_in_order_once(client, auth, settings, receivers, subscribe, sent):
    r = receivers()
    subscribe(r)
    email = "ana@example.org"
    assert client.post("/api/v1/forms/newsletter", json=newsletter_body(email=email)).status_code == 202
    confirm = link_path(to(sent(), email)[0], "confirm")
    assert client.get(confirm).status_code == 200
    client.post("/api/v1/forms/volunteer-interest", json=volunteer_body(email=email))
    client.post("/api/v1/forms/donation-inquiry", json=donation_body(email=email))
    _drain(settings)
    _drain(settings)  # a second pass sends nothing again
    assert r.bad_signatures == 0 and r.duplicates == 0
    types = r.types()
    assert types[:3] == ["contact.created", "form.submitted", "subscription.confirmed"]
    assert {"volunteer.status_changed", "donation_inquiry.created", "subscription.confirmed"} <= set(types)
    first = r.seen[r.order[0]]
    assert first.body["data"]["email"] == email and first.body["data"]["contact_id"]
    assert set(first.body) == {"type", "timestamp", "data"}
    assert first.headers["webhook-id"].startswith("msg_") and first.headers["webhook-timestamp"].isdigit()


def test_event_filter(client, settings, receivers, subscribe):
    only = receivers()
    subscribe(only, ["subscription.confirmed"])
    client.post("/api/v1/forms/newsletter", json=newsletter_body())
    _drain(settings)
    assert only.requests == 0


def test_failures_retry_on_schedule_then_stop_at_success(client, auth, settings, receivers, subscribe):
    r = receivers(status=lambda n: 500 if n <= 3 else 200)
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    before = utcnow()
    _drain(settings)
    with session_scope(settings) as s:
        d = s.scalars(select(WebhookDelivery)).one()
        # 5 s after the first failure, with jitter.
        assert d.state == "pending" and 3 <= (d.next_attempt_at - before).total_seconds() <= 8
    for _ in range(5):
        _due_now(settings)
        _drain(settings)
    assert r.requests == 4 and len(r.seen) == 1
    assert len({x.webhook_id for x in r.raw}) == 1  # the same webhook-id on every retry
    log = client.get(f"/api/v1/webhooks/endpoints/{ep}/deliveries", headers=auth()).json()["items"]
    assert [a["status"] for a in log[0]["attempts"]] == [500, 500, 500, 200]
    assert log[0]["type"] == "webhook.test" and log[0]["webhook_id"] == r.order[0]
    assert all({"at", "status", "duration_ms", "error"} <= set(a) for a in log[0]["attempts"])
    assert log[0]["attempts"][0]["error"] and log[0]["attempts"][-1]["error"] is None


def test_retry_schedule_covers_a_day():
    assert sum(delivery.SCHEDULE) >= 24 * 3600
    assert delivery.next_delay(1) is not None and 4 <= delivery.next_delay(1) <= 6  # type: ignore[operator]
    assert delivery.next_delay(len(delivery.SCHEDULE) + 1) is None


def test_410_disables_at_once(client, auth, settings, receivers, subscribe):
    r = receivers(status=lambda _n: 410)
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)
    got = client.get(f"/api/v1/webhooks/endpoints/{ep}", headers=auth()).json()
    assert got["enabled"] is False and "410" in got["disabled_reason"]
    tried = r.requests
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _due_now(settings)
    _drain(settings)
    assert r.requests == tried  # nothing more goes to a disabled endpoint


def test_three_days_without_success_disables_and_emails_admins(client, auth, settings, receivers, subscribe, sent):
    r = receivers(status=lambda _n: 503)
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)
    with session_scope(settings) as s:
        s.execute(update(WebhookEndpoint).values(failing_since=utcnow() - dt.timedelta(days=3, minutes=1)))
    _due_now(settings)
    _drain(settings)
    assert client.get(f"/api/v1/webhooks/endpoints/{ep}", headers=auth()).json()["enabled"] is False
    mails = to(sent(), "admin@staff.example.org")
    assert len(mails) == 1 and "disabled" in str(mails[0]["Subject"])
    assert mails[0]["Auto-Submitted"] == "auto-generated"
    assert not to(sent(), "editor@staff.example.org")


def test_rotation_sends_both_signatures_for_a_day(client, auth, settings, receivers, subscribe):
    r = receivers()
    ep = subscribe(r)
    old = r.secret
    new = client.post(f"/api/v1/webhooks/endpoints/{ep}/rotate-secret", headers=auth()).json()["secret"]
    assert new != old and new.startswith("whsec_")
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)  # the receiver still verifies with the old secret
    assert len(r.seen) == 1 and r.bad_signatures == 0
    sigs = r.raw[0].headers["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    r.secret = new
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    with session_scope(settings) as s:  # a day later only the new secret signs
        s.execute(update(WebhookEndpoint).values(old_secret_until=utcnow() - dt.timedelta(seconds=1)))
    _drain(settings)
    assert len(r.seen) == 2 and r.bad_signatures == 0
    assert len(r.raw[-1].headers["webhook-signature"].split(" ")) == 1


def test_replay_keeps_the_webhook_id(client, auth, settings, receivers, subscribe):
    r = receivers()
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)
    d = client.get(f"/api/v1/webhooks/endpoints/{ep}/deliveries", headers=auth()).json()["items"][0]
    assert client.post(f"/api/v1/webhooks/deliveries/{d['id']}/replay", headers=auth()).status_code == 202
    _drain(settings)
    assert [x.webhook_id for x in r.raw] == [d["webhook_id"], d["webhook_id"]]
    assert r.duplicates == 1  # the receiver's dedupe is what makes a replay harmless
    assert client.post("/api/v1/webhooks/deliveries/999999/replay", headers=auth()).status_code == 404


def test_a_later_event_of_a_contact_waits_while_an_earlier_one_retries(client, settings, receivers, subscribe):
    r = receivers(status=lambda n: 500 if n == 1 else 200)
    subscribe(r, ["contact.created", "form.submitted"])
    client.post("/api/v1/forms/newsletter", json=newsletter_body(email="order@example.org"))
    _drain(settings)
    assert r.requests == 1 and not r.seen  # form.submitted did not overtake the failed contact.created
    _due_now(settings)
    _drain(settings)
    assert r.types() == ["contact.created", "form.submitted"]


@pytest.mark.timing
def test_a_slow_endpoint_does_not_delay_another(client, settings, receivers, subscribe):
    slow = receivers(delay=3)
    fast = receivers()
    subscribe(slow)
    subscribe(fast)
    for i in range(3):
        client.post("/api/v1/forms/newsletter", json=newsletter_body(email=f"p{i}@example.org"))
    lanes = dispatcher.Dispatcher(threads=8)
    t0 = time.monotonic()
    deadline = t0 + 10
    while len(fast.seen) < 6 and time.monotonic() < deadline:
        lanes.dispatch(settings)
        time.sleep(0.05)
    assert len(fast.seen) == 6 and time.monotonic() - t0 < 3
    assert len(slow.seen) == 0  # still sleeping on its first requests
    lanes.close()


def test_redirects_are_not_followed(client, auth, settings, receivers, subscribe):
    r = receivers(status=lambda _n: 302)
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)
    log = client.get(f"/api/v1/webhooks/endpoints/{ep}/deliveries", headers=auth()).json()["items"][0]
    assert log["state"] == "pending" and log["attempts"][0]["status"] == 302 and r.requests == 1


def test_log_is_kept_30_days(client, auth, settings, receivers, subscribe):
    r = receivers()
    ep = subscribe(r)
    client.post(f"/api/v1/webhooks/endpoints/{ep}/test", headers=auth())
    _drain(settings)
    with session_scope(settings) as s:
        assert delivery.cleanup(s, utcnow() + dt.timedelta(days=29)) == 0
        assert delivery.cleanup(s, utcnow() + dt.timedelta(days=31)) == 1


def test_fan_out_counts_the_deliveries_it_adds(client, settings, receivers, subscribe):
    # The count drives the statistics refresh that keeps the claim's order check fast (it was -1).
    subscribe(receivers())
    subscribe(receivers(), ["contact.created"])
    client.post("/api/v1/forms/newsletter", json=newsletter_body(email="count@example.org"))
    with session_scope(settings) as s:
        added = delivery.fan_out(s)
        assert added == s.scalar(select(func.count()).select_from(WebhookDelivery)) and added >= 3


def test_a_claim_looks_past_a_window_of_blocked_deliveries(settings):
    # Contact 1's first event waits for a retry; its later events fill more than a claim's window.
    with session_scope(settings) as s:
        ep, _ = service.create(s, settings, {"url": "http://127.0.0.1:9/hook", "events": ["*"]})
        first = events.record(s, "contact.updated", 1, email="a@example.org", changed=["first_name"])
        for _ in range(claims.WINDOW * 2):
            events.record(s, "contact.updated", 1, email="a@example.org", changed=["first_name"])
        other = events.record(s, "contact.updated", 2, email="b@example.org", changed=["first_name"])
    with session_scope(settings) as s:
        delivery.fan_out(s)
        s.execute(update(WebhookDelivery).where(WebhookDelivery.event_id == first)
                  .values(next_attempt_at=utcnow() + dt.timedelta(minutes=5)))
    with session_scope(settings) as s:
        taken = claims.take(s, ep.id, utcnow(), dt.timedelta(seconds=45), 1)  # type: ignore[arg-type]
    assert [t[1] for t in taken] == [other]
