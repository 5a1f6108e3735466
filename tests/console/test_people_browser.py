"""Sign-in, the Staff page, invitations, two-step sign-in, contacts and session expiry in real Chromium.

Signed in through the real login page; every page checked with axe (0 WCAG 2.1 A/AA violations)
and screenshotted under tests/artifacts/console/.
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyotp
import pytest

from crm.config import Settings
from crm.db import session_scope
from crm.staff import management
from tests.browser import TABLET, check_page, chromium, chromium_page
from tests.console.helpers import PASSWORD, make_member
from tests.factories import make_contact
from tests.harness import Process, env_for, free_port, wait_http
from tests.helpers import drain_outbox, text_of

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def shot(page: Any, name: str) -> None:
    check_page(page, "console", name)


def _login(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _new_page(page: Any, base: str) -> Any:
    other = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    other.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
    return other


def _admin_invites_and_the_link_sets_a_password(page: Any, base: str, settings: Settings) -> Any:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Staff").click()  # not exact: no other link may match
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff")
    shot(page, "staff")
    page.get_by_label("Email", exact=True).fill("new.editor@staff.example.org")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("was invited as editor")
    page.get_by_label("Who must use a code from an authenticator app").select_option("admins")
    page.get_by_role("button", name="Save two-step rule").click()
    expect(page.get_by_role("status")).to_contain_text("required for admins")
    shot(page, "staff-invited")
    invite = next(m for m in drain_outbox(settings) if m["To"] == "new.editor@staff.example.org")
    link = re.search(r"http://testserver\.local(/staff/invite/\S+)", text_of(invite)).group(1)
    newcomer = _new_page(page, base)
    newcomer.goto(base + link)
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Choose your password")
    shot(newcomer, "invite")
    newcomer.get_by_label("New password").fill(PASSWORD)
    newcomer.get_by_label("Repeat the password").fill(PASSWORD)
    newcomer.get_by_role("button", name="Set password and sign in").click()
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Dashboard")
    newcomer.goto(base + link)
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Invitation link not valid")
    shot(newcomer, "invite-used")
    return newcomer


def _admin_enrols_two_step(page: Any, base: str) -> str:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Sign out").click()
    _login(page, base, "boss@staff.example.org")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-step sign-in")
    shot(page, "login-code-enrol")
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on and sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    return secret


def _contact_pages(page: Any, base: str, ann_id: int) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_label("Search").fill("ann.people")
    page.get_by_label("Interest").select_option("caregiving")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("cell", name="ann.people@example.org")).to_be_visible()
    shot(page, "contacts-filtered")
    page.get_by_role("link", name="Ann Lee").click()
    expect(page).to_have_url(f"{base}/staff/contacts/{ann_id}")
    shot(page, "contact-profile")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download everything held (data-subject export)").click()
    assert download.value.suggested_filename == f"contact-{ann_id}.json"
    page.get_by_role("link", name="Edit contact").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit ann.people@example.org")
    shot(page, "contact-edit")
    page.get_by_label("First name").fill("Annie")
    page.get_by_label("Clinical trials").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Changes saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Annie Lee")
    page.goto(f"{base}/staff/contacts/export")
    shot(page, "contacts-export")
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    assert csv_download.value.suggested_filename == "contacts.csv"
    page.goto(f"{base}/staff/contacts/{ann_id}")
    page.get_by_role("link", name="Erase contact").click()
    page.get_by_label("Type the address to confirm").fill("wrong@example.org")
    page.get_by_role("button", name="Erase permanently").click()
    expect(page.get_by_role("alert")).to_contain_text("nothing was erased")
    shot(page, "contact-erase-refused")
    page.get_by_label("Type the address to confirm").fill("ann.people@example.org")
    page.get_by_role("button", name="Erase permanently").click()
    expect(page.get_by_role("status")).to_contain_text("The contact was erased")
    shot(page, "contacts-after-erase")


def _viewer_sees_no_write_control(viewer: Any, base: str, bob_id: int) -> None:
    from playwright.sync_api import expect

    _login(viewer, base, "val@staff.example.org")
    viewer.goto(f"{base}/staff/contacts/{bob_id}")
    expect(viewer.get_by_role("heading", level=1)).to_have_text("Bob Stone")
    assert viewer.get_by_role("link", name="Edit contact").count() == 0
    assert viewer.get_by_role("link", name="Erase contact").count() == 0
    assert viewer.locator("main form[method=post]").count() == 0
    shot(viewer, "contact-viewer")
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = viewer.request.post(f"{base}/staff/contacts/{bob_id}/erase",
                                 form={"csrf_token": token, "confirm_email": "bob.people@example.org"})
    assert forged.status == 403
    viewer.goto(f"{base}/staff/staff")
    expect(viewer.get_by_role("heading", level=1)).to_have_text("Not allowed")
    shot(viewer, "not-allowed")


def test_staff_page_invitation_two_step_contacts_and_roles(settings: Settings, chromium_path: str,
                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "boss@staff.example.org", "admin")
    make_member(settings, "val@staff.example.org", "viewer")
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann.people@example.org", first_name="Ann", last_name="Lee", role="caregiver",
                           interests=["caregiving"], lists={"newsletter": "confirmed"})
        bob = make_contact(s, email="bob.people@example.org", first_name="Bob", last_name="Stone")
        ann_id, bob_id = ann.id, bob.id
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        _login(page, base, "boss@staff.example.org")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
        newcomer = _admin_invites_and_the_link_sets_a_password(page, base, settings)
        secret = _admin_enrols_two_step(page, base)
        _contact_pages(page, base, ann_id)
        # Sign out everywhere, from a second sign-in of the newcomer, ends the first one too.
        second = _new_page(page, base)
        _login(second, base, "new.editor@staff.example.org")
        second.get_by_role("link", name="Your account").click()
        expect(second.get_by_role("heading", level=1)).to_have_text("Your account")
        shot(second, "account")
        second.get_by_role("button", name="Sign out everywhere").click()
        expect(second.get_by_role("heading", level=1)).to_have_text("Sign in")
        newcomer.goto(f"{base}/staff/contacts")
        expect(newcomer.get_by_role("heading", level=1)).to_have_text("Sign in")
        _viewer_sees_no_write_control(second, base, bob_id)
        # Two-step sign-in with the next code (the one used to enrol signs in only once).
        page.get_by_role("button", name="Sign out").click()
        _login(page, base, "boss@staff.example.org")
        expect(page.get_by_role("heading", level=1)).to_have_text("Two-step sign-in")
        page.get_by_label("Code").fill("000000")
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("alert")).to_be_visible()
        shot(page, "login-code-wrong")
        page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
        # Lockout: after repeated failures even the right password is refused, with the same message.
        page.get_by_role("button", name="Sign out").click()
        for _ in range(5):
            _login(page, base, "boss@staff.example.org", "not the password at all")
            expect(page.get_by_role("alert")).to_be_visible()
        _login(page, base, "boss@staff.example.org")
        expect(page.get_by_role("alert")).to_contain_text("sign-in is paused for a while")
        shot(page, "login-locked")


@contextmanager
def _short_sessions(settings: Settings, tmp_path: Path, hours: str) -> Any:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "crm.asgi:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]
    proc = Process(argv, env_for(settings, CRM_STAFF_SESSION_HOURS=hours), tmp_path / "api.log").start()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def test_a_session_that_expires_mid_form_keeps_what_was_typed(settings: Settings, chromium_path: str,
                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann.expiry@example.org", first_name="Ann", last_name="Lee")
        ann_id = ann.id
    with _short_sessions(settings, tmp_path, "0.005") as base, chromium(chromium_path, base, TABLET) as page:
        _login(page, base, "ed@staff.example.org")
        signed_in_at = time.monotonic()
        expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
        page.goto(f"{base}/staff/contacts/{ann_id}/edit")
        page.get_by_label("Last name").fill("Typed While Away")
        page.get_by_label("Postal code").fill("30301")
        time.sleep(max(0.0, 19.5 - (time.monotonic() - signed_in_at)))  # past this server's 18-second idle limit
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        page.get_by_label("Email").fill("ed@staff.example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("status")).to_contain_text("What you typed is back")
        expect(page.get_by_label("Last name")).to_have_value("Typed While Away")
        expect(page.get_by_label("Postal code")).to_have_value("30301")
        shot(page, "contact-edit-restored-tablet")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text("Changes saved.")
    with session_scope(settings) as s:
        assert management.find_staff(s, "ed@staff.example.org").active
        from crm.contacts.models import Contact
        assert s.get(Contact, ann_id).last_name == "Typed While Away"
