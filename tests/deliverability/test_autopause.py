"""Campaigns that pause themselves (SPEC 14): permanent failures over CRM_PAUSE_ON_FAILURE_RATE after
100 attempts, complaints over 0.3 % (a campaign, or the last 30 days); warnings at 0.1 %; admins told."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from crm.campaigns import pipeline
from crm.campaigns.models import Campaign, Delivery
from crm.db import session_scope, utcnow
from crm.mail import MemorySender, PermanentMailError
from crm.outbox.models import OutboxMessage
from tests.deliverability.test_pacing import _campaign, _people
from tests.helpers import text_of

HOOK = "/api/v1/webhooks/bounces"
SECRET = {"X-CRM-Webhook-Secret": "test-webhook-secret"}


class RefusingSender(MemorySender):
    """Refuses every address on one domain with a 550 5.1.1 (a hard bounce)."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        if to.endswith("@" + self.domain):
            raise PermanentMailError(550, "5.1.1 no such user", recipient=True)
        super().send_raw(envelope_from, to, data, message_id)


def _alerts(settings: Any) -> list[OutboxMessage]:
    with session_scope(settings) as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.template == "deliverability-alert")
                              .order_by(OutboxMessage.id)))


def _counts(settings: Any, cid: int) -> dict[str, int]:
    with session_scope(settings) as s:
        return pipeline.counts(s, cid)


def test_a_campaign_with_too_many_hard_bounces_pauses_itself_and_tells_admins(settings, client, auth, sent):
    # One address in ten on a dead domain: 10 % > 5 % (the default), seen once 100 were attempted.
    _people(settings, 300, ["ok.example.org"] * 9 + ["gone.example.org"])
    cid = _campaign(settings)
    auth("admin")  # the staff (one per role) exist before the pause
    summary = pipeline.send_some(settings, cid, RefusingSender("gone.example.org"), batch_size=60)
    assert summary.stopped == "paused"
    counts = _counts(settings, cid)
    assert 100 <= counts["sent"] + counts["bounced"] <= 120  # paused after the batch that passed 100 attempts
    assert counts["queued"] >= 180  # the rest is kept for a resume
    shown = client.get(f"/api/v1/campaigns/{cid}", headers=auth("viewer")).json()
    assert shown["state"] == "paused"
    assert "failed permanently" in shown["paused_reason"] and "5 % limit" in shown["paused_reason"]
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=auth("viewer")).json()
    assert stats["paused_reason"] == shown["paused_reason"] and stats["failure_rate"] == 10.0
    # Every admin (and nobody else) is emailed once, saying why.
    alerts = _alerts(settings)
    assert [a.to_address for a in alerts] == ["admin@staff.example.org"]
    mail = [m for m in sent() if str(m["To"]) == "admin@staff.example.org"]
    assert len(mail) == 1 and "Campaign paused" in str(mail[0]["Subject"])
    assert "failed permanently" in text_of(mail[0])
    # A sender woken again sends nothing; a resume clears the reason.
    assert pipeline.send_some(settings, cid, RefusingSender("gone.example.org")).sent == 0
    r = client.post(f"/api/v1/campaigns/{cid}/resume", headers=auth("editor"))
    assert r.status_code in (200, 202) and r.json()["paused_reason"] is None


def test_under_the_failure_limit_or_under_100_attempts_nothing_pauses(settings):
    _people(settings, 95, ["gone.example.org"] * 1 + ["ok.example.org"])  # half bounce, but only 95 attempts
    cid = _campaign(settings)
    pipeline.send_some(settings, cid, RefusingSender("gone.example.org"))
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).state == "sent"  # type: ignore[union-attr]


def test_the_failure_limit_is_a_setting(settings, tmp_path):
    from tests.conftest import make_settings

    lenient = make_settings(tmp_path, settings.database_url, pause_on_failure_rate=20)
    _people(lenient, 200, ["ok.example.org"] * 9 + ["gone.example.org"])
    cid = _campaign(lenient)
    pipeline.send_some(lenient, cid, RefusingSender("gone.example.org"))
    with session_scope(lenient) as s:
        assert s.get(Campaign, cid).state == "sent"  # type: ignore[union-attr]


def _delivered(settings: Any, n_people: int, sent: int, *, days_ago: float = 0) -> tuple[int, list[str]]:
    """A sending campaign whose first `sent` deliveries went out; returns (id, their Message-IDs)."""
    _people(settings, n_people, ["ok.example.org"])
    cid = _campaign(settings)
    at = utcnow() - dt.timedelta(days=days_ago)
    with session_scope(settings) as s:
        ids = s.scalars(select(Delivery.id).where(Delivery.campaign_id == cid).order_by(Delivery.id)).all()[:sent]
        for i in ids:
            s.execute(update(Delivery).where(Delivery.id == i)
                      .values(status="sent", sent_at=at, message_id=f"<d{i}@example.org>"))
    return cid, [f"<d{i}@example.org>" for i in ids]


def _complain(client: Any, settings: Any, mids: list[str]) -> None:
    with session_scope(settings) as s:
        rows = s.execute(select(Delivery.message_id, Delivery.contact_id)).all()
        from crm.contacts.models import Contact

        emails = dict(s.execute(select(Contact.id, Contact.email)).all())
    by_mid = {m: emails[c] for m, c in rows if m}
    events = [{"type": "complaint", "email": by_mid[m], "message_id": m} for m in mids]
    r = client.post(HOOK, headers=SECRET, json={"events": events})
    assert r.status_code == 200, r.text


def test_complaints_over_0_3_percent_pause_the_campaign(settings, client, auth):
    auth("admin")
    cid, mids = _delivered(settings, 400, 300)
    _complain(client, settings, mids[:1])  # 1 in 300 = 0.33 %
    shown = client.get(f"/api/v1/campaigns/{cid}", headers=auth("viewer")).json()
    assert shown["state"] == "paused" and "reported it as spam" in shown["paused_reason"]
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=auth("viewer")).json()
    assert stats["complained"] == 1 and stats["sent"] == 300  # a complaint was still delivered
    assert [a.context["paused"] for a in _alerts(settings)] == [True]


def test_complaints_over_0_1_percent_warn_admins_once_and_keep_sending(settings, client, auth):
    auth("admin")
    cid, mids = _delivered(settings, 1100, 1000)
    _complain(client, settings, mids[:1])  # 0.1 %: not over
    assert _alerts(settings) == []
    _complain(client, settings, mids[1:2])  # 0.2 %: a warning
    _complain(client, settings, mids[2:3])  # 0.3 %: not over 0.3, and warned already
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).state == "sending"  # type: ignore[union-attr]
    alerts = _alerts(settings)  # one for the campaign, one for the 30-day window (it is all of it)
    assert [(a.context["paused"], (a.context["campaign"] or {}).get("id")) for a in alerts] == [
        (False, cid), (False, None)]
    assert "0.2 %" in alerts[0].context["reason"] and "last 30 days" in alerts[1].context["reason"]


def test_the_30_day_window_pauses_every_sending_campaign(settings, client, auth):
    auth("admin")
    old, mids = _delivered(settings, 1000, 1000, days_ago=3)
    with session_scope(settings) as s:
        s.execute(update(Campaign).where(Campaign.id == old).values(state="sent"))
    from crm.contacts.models import Contact, Subscription

    with session_scope(settings) as s:  # a second campaign, sending now, to the same people
        s.execute(update(Subscription).values(state="confirmed"))
        assert s.scalar(select(Contact.id).limit(1))
    current = _campaign(settings)
    _complain(client, settings, mids[:2])  # 0.2 % of that campaign: a warning for it
    with session_scope(settings) as s:
        assert s.get(Campaign, current).state == "sending"  # type: ignore[union-attr]
    _complain(client, settings, mids[2:4])  # 0.4 % over the 30 days: sending stops
    with session_scope(settings) as s:
        paused = s.get(Campaign, current)
        assert paused.state == "paused" and "last 30 days" in paused.paused_reason  # type: ignore[union-attr]
    # Complaints older than 30 days no longer count.
    with session_scope(settings) as s:
        s.execute(update(Delivery).values(complained_at=utcnow() - dt.timedelta(days=31),
                                          sent_at=utcnow() - dt.timedelta(days=31)))
        s.execute(update(Campaign).where(Campaign.id == current).values(state="sending", paused_reason=None))
    assert pipeline.send_some(settings, current).sent > 0


def test_a_complaint_without_a_message_id_counts_against_the_latest_campaign_message(settings, client, auth):
    auth("admin")
    cid, _ = _delivered(settings, 200, 200)
    from crm.contacts.models import Contact

    with session_scope(settings) as s:
        email = s.scalars(select(Contact.email).limit(1)).one()
    r = client.post(HOOK, headers=SECRET, json={"events": [{"type": "complaint", "email": email}]})
    assert r.status_code == 200
    with session_scope(settings) as s:
        assert s.scalar(select(Delivery.complained_at).where(Delivery.campaign_id == cid,
                                                             Delivery.complained_at.is_not(None))) is not None
        assert s.get(Campaign, cid).state == "paused"  # type: ignore[union-attr]  # 1 in 200 = 0.5 %
