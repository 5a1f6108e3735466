"""The console in real headless Chromium: sign in through the real page, open Contacts, axe, screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm.config import Settings
from crm.db import session_scope
from tests.console.helpers import PASSWORD, make_member
from tests.factories import make_contact
from tests.harness import ROOT, api_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def check_page(page: Any, name: str) -> None:
    """Screenshot, then axe: zero WCAG 2.1 A/AA violations."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def test_sign_in_open_contacts_and_a_profile(settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann.browser@example.org", first_name="Ann", last_name="Lee",
                           lists={"newsletter": "confirmed"})
        ann_id = ann.id
    api, base = api_server(settings, tmp_path / "api.log")
    refused: list[str] = []

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.route("**/*", only_the_app)
            page.goto(f"{base}/staff/contacts")
            expect(page).to_have_url(f"{base}/staff/login?next=%2Fstaff%2Fcontacts")
            check_page(page, "login")
            page.get_by_label("Email").fill("ed@staff.example.org")
            page.get_by_label("Password").fill("wrong password here")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_be_visible()
            check_page(page, "login-failed")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/staff/contacts")
            page.get_by_role("link", name="Dashboard").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
            check_page(page, "dashboard")
            page.get_by_role("link", name="Contacts", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")
            page.get_by_label("Search").fill("ann.browser")
            page.get_by_role("button", name="Search").click()
            expect(page.get_by_role("cell", name="ann.browser@example.org")).to_be_visible()
            check_page(page, "contacts")
            page.get_by_role("link", name="Ann Lee").click()
            expect(page).to_have_url(f"{base}/staff/contacts/{ann_id}")
            check_page(page, "contact")
            assert page.get_by_role("link", name="Audit").count() == 0  # editors are not admins
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
            page.goto(f"{base}/staff/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
            browser.close()
    finally:
        api.stop()
    assert refused == []
