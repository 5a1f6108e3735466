"""The console in real headless Chromium: sign in through the real page, open Contacts, axe, screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm.config import Settings
from crm.db import session_scope
from tests.browser import check_page as check_any
from tests.browser import chromium_page
from tests.console.helpers import PASSWORD, make_member
from tests.factories import make_contact

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def check_page(page: Any, name: str) -> None:
    check_any(page, "console", name)


def test_sign_in_open_contacts_and_a_profile(settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann.browser@example.org", first_name="Ann", last_name="Lee",
                           lists={"newsletter": "confirmed"})
        ann_id = ann.id
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
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
