"""Email templates API: file defaults, database overrides, preview, and the sandbox refusing what is unsafe."""

from __future__ import annotations

from typing import Any

import pytest

from crm.emailtemplates import service
from tests.factories import make_contact

GOOD = {
    "key": "spring-appeal",
    "subject": "Hello {{ contact.first_name }}",
    "body_html": '{% extends "_layout.html" %}{% block content %}<p>Hi {{ contact.first_name }}</p>'
                 '{% for item in items %}<a href="{{ item.url }}">{{ item.title }}</a>{% endfor %}'
                 '<a href="{{ links.preferences }}">Preferences</a> <a href="{{ links.unsubscribe }}">Unsubscribe</a>'
                 '{% endblock %}',
    "body_text": '{% extends "_layout.txt" %}{% block content %}Hi {{ contact.first_name }}\n'
                 'Preferences: {{ links.preferences }}\nUnsubscribe: {{ links.unsubscribe }}{% endblock %}',
}


def test_list_and_read_file_defaults(client: Any, auth: Any) -> None:
    items = client.get("/api/v1/templates", headers=auth("viewer")).json()["items"]
    campaign = next(t for t in items if t["key"] == "campaign")
    assert campaign["source"] == "file"
    got = client.get("/api/v1/templates/campaign", headers=auth("viewer")).json()
    assert got["source"] == "file" and "{{ body_html }}" in got["body_html"]
    assert client.get("/api/v1/templates/nope", headers=auth("viewer")).status_code == 404
    # Built-in emails preview too; what only their sender knows (the confirm link) shows as a placeholder.
    r = client.post("/api/v1/templates/confirm/preview", json={}, headers=auth("viewer"))
    assert r.status_code == 200 and "[confirm]" in r.json()["text"]
    assert client.post("/api/v1/templates/nope/preview", json={}, headers=auth("viewer")).status_code == 404


def test_create_put_preview(client: Any, auth: Any, session: Any) -> None:
    r = client.post("/api/v1/templates", json=GOOD, headers=auth("editor"))
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/templates", json=GOOD, headers=auth("editor")).status_code == 409
    r = client.put("/api/v1/templates/spring-appeal", json={**GOOD, "subject": "Dear {{ contact.first_name }}"},
                   headers=auth("editor"))
    assert r.status_code == 200 and r.json()["source"] == "database"
    sample = client.post("/api/v1/templates/spring-appeal/preview", json={}, headers=auth("viewer")).json()
    assert sample["subject"] == "Dear Alex" and "Immunomodulators" in sample["html"]
    c = make_contact(session, email="kim@example.org", first_name="<Kim>")
    session.commit()
    named = client.post("/api/v1/templates/spring-appeal/preview", json={"contact_id": c.id}, headers=auth("viewer"))
    assert named.status_code == 200
    assert "&lt;Kim&gt;" in named.json()["html"] and "<Kim>" in named.json()["text"]
    assert client.post("/api/v1/templates/spring-appeal/preview", json={"contact_id": 999},
                       headers=auth("viewer")).status_code == 404


def test_load_prefers_database_over_files(client: Any, auth: Any, session: Any, settings: Any) -> None:
    client.put("/api/v1/templates/campaign", json={**GOOD, "key": "campaign"}, headers=auth("editor"))
    compiled = service.load(session, settings, "campaign", "es")  # falls back to the English override
    out = compiled.render(service.sample_context(settings))
    assert out.subject == "Hello Alex"
    assert service.load(None, settings, "campaign", "en").name == "campaign"  # files when no session
    with pytest.raises(Exception, match="no email template"):
        service.load(session, settings, "missing", "en")


@pytest.mark.parametrize(("field", "source", "why"), [
    ("body_text", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("body_text", "{{ contact.__init__.__globals__ }}", "unsafe"),
    ("body_text", "{% for i in range(10**9) %}x{% endfor %}", "too big"),
    ("body_text", "{{ 2 ** 100000 }}", "unsafe"),
    ("body_text", "{{ (10 ** 1000) ** 1000 }}", "unsafe"),
    ("body_text", "{{ 'x' * 1000000000 }}", "unsafe"),
    ("body_text", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "longer"),
    ("body_text", "{{ nobody.name }}", "undefined"),
    ("body_html", "{% if %}", "syntax"),
    ("subject", "{{ contact.first_name", "syntax"),
])
def test_unsafe_templates_are_refused(client: Any, auth: Any, field: str, source: str, why: str) -> None:
    r = client.put("/api/v1/templates/evil", json={**GOOD, "key": "evil", field: source}, headers=auth("editor"))
    assert r.status_code in (400, 422), r.text
    assert why in r.text
    assert client.get("/api/v1/templates/evil", headers=auth("viewer")).status_code == 404


def test_a_mailing_template_must_keep_the_way_out(client: Any, auth: Any) -> None:
    r = client.post("/api/v1/templates", headers=auth("editor"),
                    json={**GOOD, "body_html": "<p>Give now</p>", "body_text": "Give now"})
    assert r.status_code == 400
    assert "links.unsubscribe" in r.json()["errors"]["body_html"]
    assert "org.postal_address" in r.json()["errors"]["body_text"]
    # A transactional email (no list to leave) is not held to that.
    r = client.put("/api/v1/templates/donation-ack", headers=auth("editor"),
                   json={**GOOD, "key": "donation-ack", "body_html": "<p>Thank you</p>", "body_text": "Thank you"})
    assert r.status_code == 200, r.text


def test_bad_bodies_name_the_field(client: Any, auth: Any) -> None:
    r = client.post("/api/v1/templates", json={"key": "Bad Key!", "subject": "", "language": "fr"},
                    headers=auth("editor"))
    assert r.status_code == 400
    assert {"key", "subject", "body_html", "body_text", "language"} <= set(r.json()["errors"])
