"""What the console reads of campaigns, tested without HTTP: progress, audience, rate, previews."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm.campaigns import overview, service
from crm.campaigns.models import Campaign, Delivery
from crm.db import utcnow
from crm.errors import NotFound
from crm.segments import service as segments
from crm.staff.models import AuditEvent
from tests.factories import make_contact


def _campaign(session, settings, **fields):
    return service.create(session, settings, {"name": "C", "subject": "Hi {{ contact.first_name }}",
                                              "body_html": "<p>Hello {{ contact.first_name }}</p>", **fields}, "t")


def test_audience_is_the_segment_through_the_lists_gate(session, settings):
    for i, state in enumerate(("confirmed", "confirmed", "pending", "unsubscribed")):
        make_contact(session, email=f"a{i}@example.org", tags=["vip"] if i != 1 else [],
                     lists={"newsletter": state})
    make_contact(session, email="b@example.org", tags=["vip"], lists={"newsletter": "confirmed"}, status="bounced")
    seg = segments.create_segment(session, {"name": "VIP", "rules": {"tag": "vip"}}, "t")
    assert overview.audience_size(session, _campaign(session, settings, segment_id=seg.id)) == 1
    assert overview.audience_size(session, _campaign(session, settings)) == 2  # no segment: the whole list


def test_list_page_shows_only_staff_campaigns_with_their_progress(session, settings):
    c = _campaign(session, settings)
    session.add(Campaign(kind="digest", name="digest run"))
    people = [make_contact(session, email=f"p{i}@example.org").id for i in range(3)]
    for pid, status in zip(people, ("sent", "queued", "failed"), strict=True):
        session.add(Delivery(campaign_id=c.id, contact_id=pid, status=status))
    session.flush()
    rows, more, progress = overview.list_page(session, None, 50)
    assert [r.id for r in rows] == [c.id] and not more
    assert (progress[c.id].total, progress[c.id].done, progress[c.id].percent) == (3, 2, 67)


def test_rate_counts_the_last_minute_only(session, settings):
    c = _campaign(session, settings)
    now = utcnow()
    for i, ago in enumerate((10, 50, 70, 300)):
        pid = make_contact(session, email=f"r{i}@example.org").id
        session.add(Delivery(campaign_id=c.id, contact_id=pid, status="sent", sent_at=now - dt.timedelta(seconds=ago)))
    session.flush()
    assert overview.rate_per_minute(session, c.id, now) == 2


def test_preview_as_a_contact_in_both_languages_is_audited_and_the_sample_is_not(session, settings):
    ann = make_contact(session, email="ann@example.org", first_name="Ann", language="en")
    c = _campaign(session, settings, translations={"es": {"subject": "Hola {{ contact.first_name }}"}})
    en, es = overview.preview(session, settings, c.id, ann.id, "ed@staff.example.org")
    assert (en.subject, es.subject, en.translated, es.translated) == ("Hi Ann", "Hola Ann", True, True)
    assert "Hello Ann" in en.html and "Hello Ann" in es.text  # Spanish falls back to the English body
    sample = overview.preview(session, settings, c.id, None, "ed@staff.example.org")
    assert sample[0].subject == "Hi Alex"
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.preview")).all()
    assert [(e.target, e.detail["campaign_id"]) for e in events] == [(f"contact:{ann.id}", c.id)]
    with pytest.raises(NotFound):
        overview.preview(session, settings, c.id, 10**6, "ed@staff.example.org")


def test_a_preview_never_carries_tracking_that_would_count_the_staff_member_as_the_person(session, settings):
    ann = make_contact(session, email="ann@example.org", first_name="Ann")
    c = _campaign(session, settings, track_opens=True, track_clicks=True,
                  body_html='<p><a href="https://example.org/read">Read</a></p>')
    en, es = overview.preview(session, settings, c.id, ann.id, "ed@staff.example.org")
    for version in (en, es):
        assert "/track/" not in version.html and 'href="https://example.org/read"' in version.html
