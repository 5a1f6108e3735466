"""The sending pipeline in one process: plan, claim, send, failures, pause, cancel (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from crm.campaigns import lifecycle, pipeline, planning, service, sweep
from crm.campaigns.models import Campaign, Delivery
from crm.campaigns.send import record
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.mail import MemorySender, PermanentMailError, TransientMailError
from tests.factories import make_contact
from tests.helpers import html_of, text_of


def people(settings: Any, n: int, **kw: Any) -> list[int]:
    ids = []
    with session_scope(settings) as s:
        for i in range(n):
            c = make_contact(s, email=f"p{i}-{kw.get('tag', 'x')}@example.org", first_name=f"Name{i}",
                             lists=kw.get("lists", {"newsletter": "confirmed"}), interests=kw.get("interests"))
            ids.append(c.id)
    return ids


def new_campaign(settings: Any, **fields: Any) -> int:
    with session_scope(settings) as s:
        body = {"name": "Spring", "subject": "Hello {{ contact.first_name }}",
                "body_html": "<p>Dear {{ contact.first_name }},</p><p>News.</p>", **fields}
        return service.create(s, settings, body, "editor@staff.example.org").id  # type: ignore[return-value]


def launch_and_plan(settings: Any, cid: int) -> int:
    with session_scope(settings) as s:
        _, started = service.launch(s, settings, cid)
        assert started
    return planning.plan(settings, cid)


def run_until_done(settings: Any, cid: int, sender: Any = None, rounds: int = 50) -> None:
    for _ in range(rounds):
        summary = pipeline.send_some(settings, cid, sender)
        if not summary.has_more:
            break


def statuses(settings: Any, cid: int) -> Counter[str]:
    with session_scope(settings) as s:
        return Counter(s.scalars(select(Delivery.status).where(Delivery.campaign_id == cid)))


def state(settings: Any, cid: int) -> str:
    with session_scope(settings) as s:
        return s.get(Campaign, cid).state  # type: ignore[union-attr]


def test_campaign_reaches_exactly_the_eligible_set_once(settings):
    eligible = people(settings, 5, tag="ok")
    people(settings, 2, tag="pending", lists={"newsletter": "pending"})
    people(settings, 2, tag="other", lists={"volunteer-updates": "confirmed"})
    with session_scope(settings) as s:
        gone = make_contact(s, email="gone@example.org", lists={"newsletter": "confirmed"})
        contacts.suppress(s, gone.email_key, "unsubscribed")
    cid = new_campaign(settings)
    assert launch_and_plan(settings, cid) == 5
    assert planning.plan(settings, cid) == 0  # a redelivered plan task adds nobody
    run_until_done(settings, cid)
    got = Counter(str(m["To"]).strip("<>") for m in MemorySender.outbox)
    with session_scope(settings) as s:
        expected = {s.get(Contact, i).email for i in eligible}  # type: ignore[union-attr]
    assert set(got) == expected and set(got.values()) == {1}
    assert statuses(settings, cid) == {"sent": 5}
    assert state(settings, cid) == "sent"


def test_overlapping_segment_rules_still_once(settings):
    with session_scope(settings) as s:
        for i in range(4):
            make_contact(s, email=f"o{i}@example.org", lists={"newsletter": "confirmed"},
                         interests=["caregiving", "clinical-trials"])
        from crm.segments import service as segments

        seg = segments.create_segment(s, {"name": "overlap", "rules": {"any": [
            {"interest": {"any": ["caregiving"]}}, {"interest": {"any": ["clinical-trials", "caregiving"]}}]}},
            "editor@staff.example.org")
        seg_id = seg.id
    cid = new_campaign(settings, segment_id=seg_id)
    launch_and_plan(settings, cid)
    run_until_done(settings, cid)
    assert len(MemorySender.outbox) == 4
    assert len({str(m["To"]) for m in MemorySender.outbox}) == 4


def test_every_message_carries_unsubscribe_headers_footer_and_personalisation(settings):
    people(settings, 1, tag="h")
    cid = new_campaign(settings)
    launch_and_plan(settings, cid)
    run_until_done(settings, cid)
    [msg] = MemorySender.outbox
    assert msg["Subject"] == "Hello Name0"
    lu = str(msg["List-Unsubscribe"])
    assert "<http://testserver.local/unsubscribe/" in lu and "<mailto:" in lu
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] is None
    text, html = text_of(msg), html_of(msg)
    assert "Dear Name0," in text and "Dear Name0," in html
    assert "/preferences/" in text and "/unsubscribe/" in text
    assert settings.org_postal_address in text and settings.org_postal_address in html
    assert 'style="' in html  # CSS inlined
    with session_scope(settings) as s:
        [d] = s.scalars(select(Delivery).where(Delivery.campaign_id == cid))
        assert d.message_id == str(msg["Message-ID"])


def test_spanish_version_for_spanish_contacts_and_branching_templates(settings):
    with session_scope(settings) as s:
        make_contact(s, email="es@example.org", language="es", first_name="", lists={"newsletter": "confirmed"})
        make_contact(s, email="en@example.org", first_name="Bo", lists={"newsletter": "confirmed"})
    cid = new_campaign(settings, body_html="<p>Hi{% if contact.first_name %} {{ contact.first_name }}{% endif %}!</p>",
                       translations={"es": {"subject": "Hola", "body_html": "<p>¡Hola!</p>"}})
    launch_and_plan(settings, cid)
    run_until_done(settings, cid)
    by_to = {str(m["To"]).strip("<>"): m for m in MemorySender.outbox}
    assert by_to["es@example.org"]["Subject"] == "Hola"
    assert "¡Hola!" in text_of(by_to["es@example.org"])
    assert "Cancelar suscripción" in text_of(by_to["es@example.org"])
    assert "Hi Bo!" in text_of(by_to["en@example.org"])


def test_staff_templates_render_in_the_sandbox(settings, client, auth):
    # Refused when saved (a render-check with a sample person), so no launch can fail every delivery.
    r = client.post("/api/v1/campaigns", headers=auth("editor"), json={
        "name": "x", "subject": "s", "body_html": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    assert r.status_code == 400 and "template" in r.json()["errors"]
    assert client.get("/api/v1/campaigns", headers=auth("editor")).json()["items"] == []


def test_a_body_that_would_freeze_the_api_is_refused_when_saved(client, auth):
    r = client.post("/api/v1/campaigns", headers=auth("editor"), json={
        "name": "x", "subject": "s", "body_html": "<p>{{ 7 ** 10000000 }}</p>"})
    assert r.status_code == 400 and "template" in r.json()["errors"]
    ok = client.post("/api/v1/campaigns", headers=auth("editor"), json={
        "name": "x", "subject": "Hello {{ contact.first_name }}", "body_html": "<p>Hi</p>"})
    assert ok.status_code == 201
    r = client.patch(f"/api/v1/campaigns/{ok.json()['id']}", headers=auth("editor"),
                     json={"body_text": "{% for i in range(10**9) %}{{ i }}{% endfor %}"})
    assert r.status_code == 400 and "template" in r.json()["errors"]
    assert client.get("/health").status_code == 200


class FlakySender(MemorySender):
    """Answers each address from a script of outcomes, then accepts."""

    def __init__(self, script: dict[str, list[Exception]]) -> None:
        self.script = script

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        if self.script.get(to):
            raise self.script[to].pop(0)
        super().send_raw(envelope_from, to, data, message_id)


def _due_now(settings: Any, cid: int) -> None:
    from sqlalchemy import update

    with session_scope(settings) as s:
        s.execute(update(Delivery).where(Delivery.campaign_id == cid).values(next_attempt_at=None))


def test_transient_failures_retry_from_the_database_and_5xx_suppresses(settings, monkeypatch):
    # Full jitter may draw a delay of a few ms, and a retry due within this run would be taken in it.
    monkeypatch.setattr(record, "backoff", lambda attempts: dt.timedelta(seconds=60))
    people(settings, 3, tag="f")
    cid = new_campaign(settings)
    launch_and_plan(settings, cid)
    sender = FlakySender({
        "p0-f@example.org": [TransientMailError("451 4.3.0 try later"), TransientMailError("421 closing")],
        "p1-f@example.org": [PermanentMailError(550, "5.1.1 no such user", recipient=True)],
    })
    pipeline.send_some(settings, cid, sender)
    assert statuses(settings, cid) == {"sent": 1, "queued": 1, "bounced": 1}
    assert state(settings, cid) == "sending"
    with session_scope(settings) as s:
        retry = s.scalars(select(Delivery).where(Delivery.status == "queued")).one()
        assert retry.next_attempt_at is not None and retry.attempts == 1 and "451" in retry.error
        bounced = s.scalars(select(Contact).where(Contact.email_key == "p1-f@example.org")).one()
        assert bounced.status == "bounced"
        assert contacts.suppression_reason(s, "p1-f@example.org") == "bounced"
    assert pipeline.send_some(settings, cid, sender).sent == 0  # not due yet: backoff is in the database
    for _ in range(2):
        _due_now(settings, cid)
        pipeline.send_some(settings, cid, sender)
    assert statuses(settings, cid) == {"sent": 2, "bounced": 1}
    assert state(settings, cid) == "sent"
    assert Counter(str(m["To"]).strip("<>") for m in MemorySender.outbox)["p0-f@example.org"] == 1


def test_policy_rejection_is_recorded_for_review_without_suppressing(settings):
    people(settings, 1, tag="pol")
    cid = new_campaign(settings)
    launch_and_plan(settings, cid)
    sender = FlakySender({"p0-pol@example.org": [PermanentMailError(550, "5.7.1 rejected by policy",
                                                                   recipient=True)]})
    pipeline.send_some(settings, cid, sender)
    with session_scope(settings) as s:
        d = s.scalars(select(Delivery)).one()
        assert d.status == "failed" and d.error.startswith("policy:")
        assert contacts.suppression_reason(s, "p0-pol@example.org") is None


class Hook(MemorySender):
    """Runs a callback after the n-th accepted message (a staff action mid-campaign)."""

    def __init__(self, n: int, fn: Any) -> None:
        self.n, self.fn, self.count = n, fn, 0

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        super().send_raw(envelope_from, to, data, message_id)
        self.count += 1
        if self.count == self.n:
            self.fn()


def test_unsubscribe_mid_campaign_gets_nothing_after(settings):
    people(settings, 6, tag="u")

    def unsubscribe_last() -> None:
        with session_scope(settings) as s:
            contacts.suppress(s, "p5-u@example.org", "unsubscribed")

    cid = new_campaign(settings)
    launch_and_plan(settings, cid)
    run_until_done(settings, cid, Hook(2, unsubscribe_last))
    assert "p5-u@example.org" not in {str(m["To"]).strip("<>") for m in MemorySender.outbox}
    assert statuses(settings, cid) == {"sent": 5, "skipped": 1}


def test_pause_stops_at_once_and_resume_continues_where_it_stopped(settings):
    people(settings, 8, tag="pz")
    cid = new_campaign(settings)

    def pause() -> None:
        with session_scope(settings) as s:
            service.pause(s, cid)

    launch_and_plan(settings, cid)
    summary = pipeline.send_some(settings, cid, Hook(3, pause))
    assert summary.sent == 3 and summary.stopped == "paused" and not summary.has_more
    assert statuses(settings, cid) == {"sent": 3, "queued": 5}
    assert pipeline.send_some(settings, cid).sent == 0  # paused: nothing claimed
    with session_scope(settings) as s:
        service.resume(s, cid)
    run_until_done(settings, cid)
    got = Counter(str(m["To"]) for m in MemorySender.outbox)
    assert len(got) == 8 and set(got.values()) == {1}
    assert state(settings, cid) == "sent"


def test_cancel_mid_campaign_ends_it_for_good(settings):
    people(settings, 6, tag="c")
    cid = new_campaign(settings)

    def cancel() -> None:
        with session_scope(settings) as s:
            service.cancel(s, cid)

    launch_and_plan(settings, cid)
    pipeline.send_some(settings, cid, Hook(2, cancel))
    assert statuses(settings, cid) == {"sent": 2, "cancelled": 4}
    assert state(settings, cid) == "cancelled"
    with session_scope(settings) as s, pytest.raises(Exception, match="cancelled"):
        service.resume(s, cid)


def test_expired_lease_is_reclaimed_and_sent_once(settings):
    import datetime as dt

    from sqlalchemy import update

    from crm.db import utcnow

    people(settings, 3, tag="l")
    cid = new_campaign(settings)
    launch_and_plan(settings, cid)
    # A worker claimed everything and died: rows stay `sending` under its lease.
    with session_scope(settings) as s:
        ids, _ = pipeline.claim(s, cid, 10, dt.timedelta(seconds=60))
        assert len(ids) == 3
    assert pipeline.send_some(settings, cid).sent == 0
    with session_scope(settings) as s:
        s.execute(update(Delivery).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    swept = sweep.sweep(settings)
    assert swept.reclaimed == 3
    run_until_done(settings, cid)
    assert len(MemorySender.outbox) == 3 and state(settings, cid) == "sent"


def test_digest_deliveries_planned_elsewhere_get_their_own_items_newest_first(settings):
    import datetime as dt

    from crm.campaigns.models import DigestItem
    from crm.content.models import ContentItem
    from crm.db import utcnow

    now = utcnow()
    with session_scope(settings) as s:
        a = make_contact(s, email="da@example.org", lists={"newsletter": "confirmed"})
        b = make_contact(s, email="db@example.org", lists={"newsletter": "confirmed"})
        old = ContentItem(title="Older piece", url="https://example.org/old", published_at=now - dt.timedelta(days=2))
        new = ContentItem(title="Newer piece", url="https://example.org/new", published_at=now)
        s.add_all([old, new])
        s.flush()
        camp = Campaign(kind="digest", name="weekly digest", subject="Your digest", template="campaign",
                        list="newsletter")
        s.add(camp)
        s.flush()
        s.add_all([DigestItem(campaign_id=camp.id, contact_id=a.id, content_id=old.id),
                   DigestItem(campaign_id=camp.id, contact_id=a.id, content_id=new.id),
                   DigestItem(campaign_id=camp.id, contact_id=b.id, content_id=old.id),
                   Delivery(campaign_id=camp.id, contact_id=a.id), Delivery(campaign_id=camp.id, contact_id=b.id)])
        assert lifecycle.start_sending(s, camp.id)
        cid = camp.id
    run_until_done(settings, cid)
    by_to = {str(m["To"]).strip("<>"): text_of(m) for m in MemorySender.outbox}
    assert by_to["da@example.org"].index("Newer piece") < by_to["da@example.org"].index("Older piece")
    assert "Newer piece" not in by_to["db@example.org"] and "Older piece" in by_to["db@example.org"]
    assert state(settings, cid) == "sent"


def test_context_extras_hook_adds_per_recipient_links(settings):
    from crm.campaigns.compose import Person

    def extras(session: Any, settings: Any, campaign: Campaign) -> Any:
        return lambda p: {"respond": f"https://example.org/respond/{p.contact_id}"}

    previous, pipeline.CONTEXT_EXTRAS["opportunity"] = pipeline.CONTEXT_EXTRAS["opportunity"], extras
    try:
        with session_scope(settings) as s:
            c = make_contact(s, email="v@example.org", lists={"volunteer-updates": "confirmed"})
            camp = Campaign(kind="opportunity", name="drivers", subject="Drivers needed", list="volunteer-updates",
                            body_text="Can you help? {{ links.respond }}", body_html="<p>{{ links.respond }}</p>")
            s.add(camp)
            s.flush()
            s.add(Delivery(campaign_id=camp.id, contact_id=c.id))
            lifecycle.start_sending(s, camp.id)
            cid, contact_id = camp.id, c.id
        run_until_done(settings, cid)
        [msg] = MemorySender.outbox
        assert f"https://example.org/respond/{contact_id}" in text_of(msg)
        assert Person  # the type the hook receives
    finally:
        pipeline.CONTEXT_EXTRAS["opportunity"] = previous


def test_the_sweep_starts_a_scheduled_campaign_when_it_is_due(settings):
    import datetime as dt

    from sqlalchemy import update

    from crm.db import utcnow

    people(settings, 2, tag="sch")
    cid = new_campaign(settings)
    with session_scope(settings) as s:
        service.schedule(s, cid, {"send_at": (utcnow() + dt.timedelta(hours=1)).isoformat()})
    assert sweep.sweep(settings).started == []  # not yet
    with session_scope(settings) as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(send_at=utcnow() - dt.timedelta(seconds=1)))
    assert sweep.sweep(settings).started == [cid]
    assert sweep.sweep(settings).started == []  # once
    planning.plan(settings, cid)  # what the queued plan task does
    run_until_done(settings, cid)
    assert len(MemorySender.outbox) == 2 and state(settings, cid) == "sent"
