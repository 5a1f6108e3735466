"""Campaign pages over HTTP: every action as an editor, what a viewer sees and may not force, CSRF."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from crm.campaigns import overview, service
from crm.campaigns.models import Campaign, Delivery
from crm.db import session_scope, utcnow
from crm.mail import MemorySender
from crm.segments import service as segments
from crm.staff.models import AuditEvent
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_contact

EDITOR, VIEWER = "ed@staff.example.org", "vi@staff.example.org"
FORM = {"name": "Spring appeal", "list": "newsletter", "segment_id": "", "template": "campaign",
        "subject": "News for {{ contact.first_name }}",
        "body_html": "<p>Hello {{ contact.first_name }}</p><p><a href=\"{{ links.preferences }}\">Your emails</a></p>",
        "body_text": "", "es_subject": "", "es_body_html": "", "es_body_text": ""}


@pytest.fixture
def editor(settings: Any, client: Any) -> Any:
    make_member(settings, EDITOR, "editor")
    assert sign_in(client, EDITOR).status_code == 303
    return client


def _token(client: Any, path: str = "/staff/campaigns") -> str:
    return csrf_of(client.get(path).text)


def _create(client: Any, **fields: str) -> int:
    r = client.post("/staff/campaigns/new", data={**FORM, **fields, "csrf_token": _token(client)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(re.search(r"/staff/campaigns/(\d+)\?done=created", r.headers["location"]).group(1))


def _people(settings: Any, n: int, **fields: Any) -> list[int]:
    with session_scope(settings) as s:
        return [make_contact(s, email=f"p{i}@example.org", first_name=f"P{i}", lists={"newsletter": "confirmed"},
                             **fields).id for i in range(n)]


def test_compose_a_campaign_with_spanish_and_content_and_see_it_listed(settings, editor):
    with session_scope(settings) as s:
        seg = segments.create_segment(s, {"name": "Spanish readers", "rules": {"language": "es"}}, EDITOR)
        seg_id = seg.id
    page = editor.get("/staff/campaigns/new")
    assert page.status_code == 200 and page.text.count("<h1") == 1
    for label in ("Name", "List", "Segment", "Template", "Subject", "HTML body", "Plain-text body", "Spanish subject",
                  "Spanish HTML body", "Spanish plain-text body"):
        assert f">{label}</label>" in page.text, label
    assert "Spanish readers" in page.text
    cid = _create(editor, segment_id=str(seg_id), es_subject="Noticias para {{ contact.first_name }}",
                  es_body_html="<p>Hola</p>", track_clicks="on")
    with session_scope(settings) as s:
        c = s.get(Campaign, cid)
        assert (c.segment_id, c.track_clicks, c.translations["es"]["subject"]) == (
            seg_id, True, "Noticias para {{ contact.first_name }}")
        assert c.created_by == EDITOR
    detail = editor.get(f"/staff/campaigns/{cid}?done=created")
    assert "Campaign saved as a draft." in detail.text and "Spanish readers" in detail.text
    listing = editor.get("/staff/campaigns")
    assert f'href="/staff/campaigns/{cid}">Spring appeal</a>' in listing.text and "Draft" in listing.text


def test_the_services_reasons_appear_next_to_each_field_and_what_was_typed_stays(editor):
    r = editor.post("/staff/campaigns/new", data={**FORM, "name": "", "subject": "Hi {{ contact.first_name",
                                                    "list": "nope", "csrf_token": _token(editor)})
    assert r.status_code == 400
    assert re.search(r'id="err-name">is required<', r.text)
    assert re.search(r'id="err-list">unknown list', r.text)
    assert re.search(r'id="err-subject">template error', r.text)
    assert 'aria-describedby="err-subject"' in r.text and 'value="Hi {{ contact.first_name"' in r.text


def test_edit_a_draft_and_a_sent_campaign_can_no_longer_be_edited(settings, editor):
    cid = _create(editor)
    assert 'value="Spring appeal"' in editor.get(f"/staff/campaigns/{cid}/edit").text
    r = editor.post(f"/staff/campaigns/{cid}/edit", data={**FORM, "name": "Autumn appeal",
                                                          "csrf_token": _token(editor)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/staff/campaigns/{cid}?done=saved"
    bad = editor.post(f"/staff/campaigns/{cid}/edit", data={**FORM, "subject": "", "csrf_token": _token(editor)})
    assert bad.status_code == 400 and 'id="err-subject">is required<' in bad.text
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).name == "Autumn appeal"
        s.get(Campaign, cid).state = "sent"
    assert editor.get(f"/staff/campaigns/{cid}/edit").status_code == 409
    r = editor.post(f"/staff/campaigns/{cid}/edit", data={**FORM, "csrf_token": _token(editor)})
    assert r.status_code == 409 and "<h1>Not possible now</h1>" in r.text


def test_preview_as_a_contact_found_by_search_in_both_languages_is_audited(settings, editor):
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann@example.org", first_name="Ann", last_name="Lee", language="es")
        ann_id = ann.id
    cid = _create(editor, es_subject="Noticias para {{ contact.first_name }}", es_body_html="<p>Hola {{ contact.first_name }}</p>")
    found = editor.get(f"/staff/campaigns/{cid}/preview?q=ann")
    assert f'href="/staff/campaigns/{cid}/preview?contact_id={ann_id}">Preview as Ann Lee</a>' in found.text
    sample = editor.get(f"/staff/campaigns/{cid}/preview")
    assert "News for Alex" in sample.text and "Noticias para Alex" in sample.text
    shown = editor.get(f"/staff/campaigns/{cid}/preview?contact_id={ann_id}")
    assert shown.status_code == 200 and "News for Ann" in shown.text and "Noticias para Ann" in shown.text
    srcdocs = re.findall(r'<iframe [^>]*sandbox=""[^>]*srcdoc="([^"]*)"', shown.text)
    assert len(srcdocs) == 2 and "Hola Ann" in srcdocs[1] and "&lt;/p&gt;" in srcdocs[1]
    assert "<h2>English</h2>" not in shown.text and ">Plain text</h3>" in shown.text
    with session_scope(settings) as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.preview")).all()
        assert (event.staff_email, event.target) == (EDITOR, f"contact:{ann_id}")
    assert editor.get(f"/staff/campaigns/{cid}/preview?contact_id=999999").status_code == 404


def test_a_test_send_goes_to_staff_only_and_names_a_bad_address(settings, editor):
    cid = _create(editor)
    token = _token(editor, f"/staff/campaigns/{cid}/preview")
    bad = editor.post(f"/staff/campaigns/{cid}/test", data={"emails": f"{EDITOR}, someone@example.org",
                                                          "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-emails">someone@example.org is not a staff address<' in bad.text
    assert MemorySender.outbox == []
    ok = editor.post(f"/staff/campaigns/{cid}/test", data={"emails": EDITOR, "csrf_token": token},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].endswith("done=tested")
    [msg] = MemorySender.outbox
    assert str(msg["Subject"]) == "[TEST] News for Alex"


def test_schedule_launch_after_the_confirmation_pause_resume_cancel(settings, editor, published):
    _people(settings, 3)
    cid = _create(editor)
    token = _token(editor)
    past = editor.post(f"/staff/campaigns/{cid}/schedule", data={"send_at": "2001-01-01T09:00", "csrf_token": token})
    assert past.status_code == 400 and 'id="err-send_at">is in the past<' in past.text
    later = (utcnow() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    r = editor.post(f"/staff/campaigns/{cid}/schedule", data={"send_at": later, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).state == "scheduled"
    confirm = editor.get(f"/staff/campaigns/{cid}/launch")
    assert "<h1>Send to 3 people?</h1>" in confirm.text and ">Send now</button>" in confirm.text
    assert editor.post(f"/staff/campaigns/{cid}/launch", data={"csrf_token": token},
                       follow_redirects=False).headers["location"] == f"/staff/campaigns/{cid}?done=launched"
    assert any("plan" in task for task, _ in published.sent)  # the plan goes to the broker on commit
    live = editor.get(f"/staff/campaigns/{cid}")
    assert 'hx-trigger="every 3s"' in live.text and 'http-equiv="refresh"' in live.text and ">Pause</button>" in live.text
    confirm_cancel = editor.get(f"/staff/campaigns/{cid}/cancel")
    assert "<h1>Cancel Spring appeal for good?</h1>" in confirm_cancel.text and ">Cancel campaign</button>" in confirm_cancel.text
    for action, state in (("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        r = editor.post(f"/staff/campaigns/{cid}/{action}", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303, action
        with session_scope(settings) as s:
            assert s.get(Campaign, cid).state == state
    again = editor.post(f"/staff/campaigns/{cid}/pause", data={"csrf_token": token})
    assert again.status_code == 409 and "cannot pause a campaign that is cancelled" in again.text
    done = editor.get(f"/staff/campaigns/{cid}/progress")
    assert "hx-trigger" not in done.text and "Cancelled" in done.text


def test_the_live_panel_counts_and_stops_polling_when_sent(settings, editor):
    ids = _people(settings, 4)
    cid = _create(editor, track_opens="on")
    with session_scope(settings) as s:
        c = s.get(Campaign, cid)
        c.state, c.planned_at = "sending", utcnow()
        now = utcnow()
        for i, contact_id in enumerate(ids):
            s.add(Delivery(campaign_id=cid, contact_id=contact_id, status="sent" if i < 3 else "queued",
                           sent_at=now if i < 3 else None, opened_at=now if i == 0 else None))
    panel = editor.get(f"/staff/campaigns/{cid}/progress")
    assert "<h1" not in panel.text and 'hx-trigger="every 3s"' in panel.text
    assert re.search(r'data-figure="sent">3<', panel.text) and re.search(r'data-figure="queued">1<', panel.text)
    assert re.search(r"<dt>Rate per minute</dt><dd>3</dd>", panel.text)
    with session_scope(settings) as s:
        assert overview.rate_per_minute(s, cid, utcnow() + dt.timedelta(minutes=2)) == 0
        s.get(Campaign, cid).state = "sent"
    done = editor.get(f"/staff/campaigns/{cid}")
    assert "hx-trigger" not in done.text and 'http-equiv="refresh"' not in done.text
    assert re.search(r"<dt>Opened</dt><dd>1</dd>", done.text) and "<dt>Clicked</dt>" not in done.text
    listing = editor.get("/staff/campaigns")
    assert "3 of 4" in listing.text


def test_a_viewer_sees_no_write_control_and_a_forced_post_is_refused(settings, client):
    make_member(settings, VIEWER, "viewer")
    _people(settings, 1)
    with session_scope(settings) as s:
        cid = service.create(s, settings, {"name": "Look only", "subject": "Hi"}, EDITOR).id
    sign_in(client, VIEWER)
    token = _token(client)
    listing = client.get("/staff/campaigns")
    assert listing.status_code == 200 and "New campaign" not in listing.text
    detail = client.get(f"/staff/campaigns/{cid}")
    assert detail.status_code == 200
    for control in ("Launch", "Edit", "Schedule</button>", "Cancel campaign", "Pause", "Send a test"):
        assert control not in detail.text, control
    assert "Send a test" not in client.get(f"/staff/campaigns/{cid}/preview").text
    for path in ("/new", f"/{cid}/edit", f"/{cid}/launch", f"/{cid}/cancel"):
        assert client.get(f"/staff/campaigns{path}").status_code == 403, path
    for path in ("/new", f"/{cid}/edit", f"/{cid}/test", f"/{cid}/schedule", f"/{cid}/launch", f"/{cid}/pause",
                 f"/{cid}/resume", f"/{cid}/cancel"):
        assert client.post(f"/staff/campaigns{path}", data={**FORM, "csrf_token": token}).status_code == 403, path
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).state == "draft" and s.get(Campaign, cid).name == "Look only"


def test_a_post_without_the_right_csrf_token_changes_nothing(settings, editor):
    cid = _create(editor)
    for path in ("/new", f"/{cid}/edit", f"/{cid}/test", f"/{cid}/schedule", f"/{cid}/launch", f"/{cid}/cancel"):
        for token in ({}, {"csrf_token": "forged"}):
            r = editor.post(f"/staff/campaigns{path}", data={**FORM, "emails": EDITOR, **token})
            assert r.status_code == 403, path
    with session_scope(settings) as s:
        assert s.get(Campaign, cid).state == "draft"
        assert len(s.scalars(select(Campaign)).all()) == 1
    assert MemorySender.outbox == []


def test_signed_out_pages_go_to_the_login_and_digests_are_not_listed(settings, client):
    r = client.get("/staff/campaigns", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login?next=")
    make_member(settings, EDITOR, "editor")
    sign_in(client, EDITOR)
    with session_scope(settings) as s:
        digest = Campaign(kind="digest", name="Weekly digest run", state="sent")
        s.add(digest)
        s.flush()
        digest_id = digest.id
    assert "Weekly digest run" not in client.get("/staff/campaigns").text
    assert client.get(f"/staff/campaigns/{digest_id}").status_code == 404


def test_a_poll_after_the_session_ended_sends_the_browser_to_sign_in_and_back(settings, client):
    with session_scope(settings) as s:
        cid = service.create(s, settings, {"name": "Polled", "subject": "Hi"}, EDITOR).id
    r = client.get(f"/staff/campaigns/{cid}/progress", headers={
        "HX-Request": "true", "HX-Current-URL": f"http://testserver.local/staff/campaigns/{cid}"})
    assert r.status_code == 401 and r.text == ""
    assert r.headers["hx-redirect"] == f"/staff/login?next=%2Fstaff%2Fcampaigns%2F{cid}"


def test_saving_again_keeps_a_segment_and_items_older_than_the_composers_choices(settings, editor, monkeypatch):
    from crm.console import campaign_forms
    from crm.content import service as content

    with session_scope(settings) as s:
        old_seg = segments.create_segment(s, {"name": "Old segment", "rules": {"tag": "x"}}, EDITOR).id
        old_item = content.create_item(s, {"title": "Old item", "url": "https://example.org/old"}).id
        segments.create_segment(s, {"name": "New segment", "rules": {"tag": "y"}}, EDITOR)
        content.create_item(s, {"title": "New item", "url": "https://example.org/new"})
    cid = _create(editor, segment_id=str(old_seg), **{f"content_{old_item}": "on"})
    monkeypatch.setattr(campaign_forms, "CHOICES_LIMIT", 1)
    form = editor.get(f"/staff/campaigns/{cid}/edit").text
    assert "New segment" in form and re.search(rf'<option value="{old_seg}" selected>Old segment<', form)
    assert re.search(rf'name="content_{old_item}" checked>', form) and "New item" in form
