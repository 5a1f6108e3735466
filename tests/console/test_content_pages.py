"""Content items and email templates in the console over HTTP: list, create, edit, delete, preview, errors."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from crm.campaigns.models import Campaign
from crm.content.models import ContentItem
from crm.db import session_scope
from crm.emailtemplates.models import EmailTemplate
from crm.staff.models import AuditEvent
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_contact

GOOD_HTML = ('{% extends "_layout.html" %}{% block content %}<p>Hi {{ contact.first_name }}</p>{% endblock %}'
             '{% block footer %}<a href="{{ links.preferences }}">Preferences</a> '
             '<a href="{{ links.unsubscribe }}">Unsubscribe</a>{{ super() }}{% endblock %}')
GOOD_TEXT = ('{% extends "_layout.txt" %}{% block content %}Hi {{ contact.first_name }}{% endblock %}'
             '{% block footer %}{{ links.preferences }} {{ links.unsubscribe }}{{ super() }}{% endblock %}')


def _signed(settings, client, role="editor"):
    make_member(settings, f"{role}@staff.example.org", role)
    sign_in(client, f"{role}@staff.example.org")
    return csrf_of(client.get("/staff/content").text)


def test_content_items_create_list_edit_and_delete(settings, client):
    token = _signed(settings, client)
    assert "<h1>Content</h1>" in client.get("/staff/content").text
    new = client.get("/staff/content/new")
    assert new.status_code == 200 and 'id="topic.caregiving"' in new.text
    bad = client.post("/staff/content/new", data={"csrf_token": token, "title": "", "url": "ftp://x",
                                                  "language": "en", "published_at": ""})
    assert bad.status_code == 400
    assert 'id="title-error">is required' in bad.text and 'id="url-error">' in bad.text
    made = client.post("/staff/content/new", data={"csrf_token": token, "title": "Questions for your doctor",
                                                   "url": "https://example.org/q", "summary": "A checklist",
                                                   "topic.caregiving": "1", "language": "es",
                                                   "published_at": "2026-11-30"}, follow_redirects=False)
    assert made.status_code == 303
    with session_scope(settings) as s:
        item = s.scalars(select(ContentItem)).one()
        item_id, published = item.id, item.published_at
    assert published.isoformat().startswith("2026-11-30")
    listing = client.get("/staff/content").text
    assert "Questions for your doctor" in listing and "Caregiving" in listing and "30 Nov 2026" in listing
    edited = client.post(f"/staff/content/{item_id}", data={"csrf_token": token, "title": "Questions to ask",
                                                            "url": "https://example.org/q", "language": "es",
                                                            "published_at": "2026-11-30", "revised_at": ""},
                         follow_redirects=False)
    assert edited.status_code == 303
    with session_scope(settings) as s:
        item = s.get(ContentItem, item_id)
        assert item.title == "Questions to ask" and item.published_at == published  # kept to the second
    opened = client.get(f"/staff/content/{item_id}")
    assert 'value="Questions to ask"' in opened.text and 'id="topic.caregiving" name="topic.caregiving" value="1">' in opened.text
    assert client.post(f"/staff/content/{item_id}/delete", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    with session_scope(settings) as s:
        assert s.get(ContentItem, item_id) is None


def test_a_template_with_a_syntax_error_shows_it_beside_the_field(settings, client):
    token = _signed(settings, client)
    r = client.post("/staff/content/templates/new", data={
        "csrf_token": token, "key": "spring", "language": "en", "subject": "Hello {{ contact.first_name",
        "body_html": GOOD_HTML, "body_text": "{% for x in %}", "action": "save"})
    assert r.status_code == 400 and "<h1>New template</h1>" in r.text
    assert re.search(r'id="subject-error">template syntax error', r.text)
    assert re.search(r'id="body_text-error">template syntax error', r.text)
    assert 'id="body_html-error"' not in r.text
    with session_scope(settings) as s:
        assert s.scalars(select(EmailTemplate)).first() is None
    loop = client.post("/staff/content/templates/new", data={
        "csrf_token": token, "key": "spring", "language": "en", "subject": "Hi",
        "body_html": "{{ 7 ** 10000000 }}", "body_text": GOOD_TEXT, "action": "preview"})
    assert loop.status_code == 400 and re.search(r'id="body_html-error">unsafe or too large', loop.text)


def test_create_preview_as_a_found_contact_edit_and_delete_a_template(settings, client):
    token = _signed(settings, client)
    with session_scope(settings) as s:
        ann_id = make_contact(s, email="ann.preview@example.org", first_name="Annabel").id
    form = {"csrf_token": token, "key": "spring", "language": "en", "subject": "Hello {{ contact.first_name }}",
            "body_html": GOOD_HTML, "body_text": GOOD_TEXT}
    found = client.post("/staff/content/templates/new", data={**form, "action": "find", "preview_q": "ann.preview"})
    assert f'id="preview-{ann_id}" name="preview_contact" value="{ann_id}"' in found.text
    shown = client.post("/staff/content/templates/new", data={**form, "action": "preview",
                                                              "preview_contact": str(ann_id)})
    assert shown.status_code == 200 and '<p class="subject">Hello Annabel</p>' in shown.text
    assert "Hi Annabel" in html.unescape(shown.text)
    with session_scope(settings) as s:
        audited = s.scalars(select(AuditEvent).where(AuditEvent.action == "template.preview")).one()
        assert audited.target == f"contact:{ann_id}"
    sample = client.post("/staff/content/templates/new", data={**form, "action": "preview"})
    assert '<p class="subject">Hello Alex</p>' in sample.text
    saved = client.post("/staff/content/templates/new", data={**form, "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith("/staff/content/templates/spring")
    assert ">spring</a>" in client.get("/staff/content/templates").text
    reserved = client.post("/staff/content/templates/new", data={**form, "key": "new", "action": "save"})
    assert reserved.status_code == 400 and 'id="key-error">is reserved' in reserved.text
    again = client.post("/staff/content/templates/new", data={**form, "action": "save"})
    assert again.status_code == 409 and 'id="key-error">already exists' in again.text
    edited = client.post("/staff/content/templates/spring", data={**form, "subject": "Spring news", "action": "save"},
                         follow_redirects=False)
    assert edited.status_code == 303
    assert 'value="Spring news"' in client.get("/staff/content/templates/spring").text
    with session_scope(settings) as s:
        s.add(Campaign(name="Spring appeal", subject="Hi", template="spring"))
    refused = client.post("/staff/content/templates/spring/delete?language=en", data={"csrf_token": token})
    assert refused.status_code == 409 and "Spring appeal" in refused.text
    with session_scope(settings) as s:
        s.delete(s.scalars(select(Campaign)).one())
    gone = client.post("/staff/content/templates/spring/delete?language=en", data={"csrf_token": token},
                       follow_redirects=False)
    assert gone.status_code == 303
    with session_scope(settings) as s:
        assert s.scalars(select(EmailTemplate)).first() is None


def test_a_built_in_template_opens_with_its_files_and_a_bad_key_is_a_page(settings, client):
    _signed(settings, client)
    page = client.get("/staff/content/templates/campaign")
    assert page.status_code == 200 and "This is the built-in version" in page.text and "{{ body_html }}" in page.text
    spanish = client.get("/staff/content/templates/campaign?language=es")
    assert spanish.status_code == 200 and '<option value="es" selected>' in spanish.text
    assert "Cancelar suscripción" in spanish.text and "Cancelar suscripción" not in page.text
    assert client.get("/staff/content/templates/no-such-thing").status_code == 404


def test_a_viewer_reads_content_with_no_write_control_and_forced_posts_are_refused(settings, client):
    with session_scope(settings) as s:
        s.add(ContentItem(title="Read me", url="https://example.org/r"))
        s.flush()
        item_id = s.scalars(select(ContentItem.id)).one()
    token = _signed(settings, client, role="viewer")
    listing = client.get("/staff/content").text
    assert "Read me" in listing and "New content item" not in listing
    item = client.get(f"/staff/content/{item_id}").text
    assert "Save content item" not in item and "/delete" not in item
    tpl = client.get("/staff/content/templates/campaign").text
    assert "Save template" not in tpl and ">Preview</button>" in tpl
    assert "New template" not in client.get("/staff/content/templates").text
    assert client.get("/staff/content/new").status_code == 403
    assert client.get("/staff/content/templates/new").status_code == 403
    form = {"csrf_token": token, "title": "Mine", "url": "https://example.org/m", "language": "en"}
    assert client.post("/staff/content/new", data=form).status_code == 403
    assert client.post(f"/staff/content/{item_id}", data=form).status_code == 403
    assert client.post(f"/staff/content/{item_id}/delete", data={"csrf_token": token}).status_code == 403
    saved = client.post("/staff/content/templates/campaign", data={"csrf_token": token, "subject": "x",
                                                                   "body_html": "x", "body_text": "x",
                                                                   "action": "save"})
    assert saved.status_code == 403
    with session_scope(settings) as s:
        assert [i.title for i in s.scalars(select(ContentItem))] == ["Read me"]
        assert s.scalars(select(EmailTemplate)).first() is None
