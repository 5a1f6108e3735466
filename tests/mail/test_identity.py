"""The organisation (CRM_ORG_*) on every public page in both languages and in the console; no name hard-coded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar.testing import TestClient

from crm.app import create_app
from crm.config import DEFAULT_ORG_NAME, PROJECT_ROOT
from crm.db import session_scope
from crm.links import person_links, url_for
from crm.volunteers.signups import portal_url
from tests.conftest import make_settings
from tests.factories import make_volunteer

ORG = {"org_name": "Hope Line Cancer Support", "org_website": "https://hopeline.example.org",
       "org_helpline": "1-800-555-0100", "org_postal_address": "9 Elm Road, Decatur, GA 30030"}


@pytest.fixture
def org_client(migrated, tmp_path, settings):
    custom = make_settings(tmp_path, migrated, **ORG)
    with session_scope(custom) as s:
        vol = make_volunteer(s, email="ana@example.org", first_name="Ana", language="es",
                             lists={"newsletter": "confirmed", "volunteer-updates": "confirmed"})
        contact_id = vol.contact_id
    with TestClient(app=create_app(custom), base_url=custom.public_base_url) as client:
        yield client, custom, contact_id


def _pages(settings, contact_id):
    links = person_links(settings, contact_id)
    return {"preferences": links["preferences"], "unsubscribe": links["unsubscribe"],
            "confirm": url_for(settings, contact_id, "confirm"), "volunteer": portal_url(settings, contact_id),
            "resend": f"{settings.public_base_url}/links/resend",
            "bad link": f"{settings.public_base_url}/preferences/not-a-token"}


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_public_page_names_the_organisation(org_client, language):
    client, settings, contact_id = org_client
    for name, url in _pages(settings, contact_id).items():
        r = client.get(url, headers={"Accept-Language": language})
        assert r.headers["content-type"].startswith("text/html"), name
        html = r.text
        for value in ("Hope Line Cancer Support", "1-800-555-0100", "hopeline.example.org", "9 Elm Road, Decatur"):
            assert value in html, (name, value)
        assert DEFAULT_ORG_NAME not in html, name
        assert re.search(r"<title>[^<]*Hope Line Cancer Support</title>", html), name


def test_spanish_pages_say_it_in_spanish(org_client):
    client, settings, contact_id = org_client
    html = client.get(_pages(settings, contact_id)["preferences"]).text  # Ana reads Spanish
    assert 'lang="es"' in html and "línea de ayuda" in html.lower()


def test_console_header_names_the_organisation(migrated, tmp_path, monkeypatch):
    from crm.config import get_settings

    for key, value in ORG.items():
        monkeypatch.setenv(f"CRM_{key.upper()}", value)
    get_settings.cache_clear()
    try:
        with TestClient(app=create_app(make_settings(tmp_path, migrated, **ORG))) as client:
            html = client.get("/staff/login").text
        assert re.search(r"<header>\s*<strong>Hope Line Cancer Support &middot; Staff console</strong>", html)
    finally:
        get_settings.cache_clear()


def test_no_organisation_name_is_written_anywhere_but_the_default_setting():
    allowed = {PROJECT_ROOT / "crm" / "config.py"}
    found = []
    for folder in ("crm", "templates", "worker"):
        for path in (PROJECT_ROOT / folder).rglob("*"):
            if (path.suffix in {".py", ".html", ".txt", ".po", ".css", ".js"} and path not in allowed
                    and re.search(r"cancer helpline", path.read_text(encoding="utf-8"), re.IGNORECASE)):
                found.append(str(path.relative_to(PROJECT_ROOT)))
    assert not found, f"the organisation's name is hard-coded in {found}: use org.name (CRM_ORG_NAME)"
    assert Path(PROJECT_ROOT / "crm" / "config.py").read_text().count(DEFAULT_ORG_NAME) == 1
