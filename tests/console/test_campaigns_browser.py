"""A whole campaign from the browser: compose to a saved segment, preview as a named contact, a test
that arrives with working links, a confirmed launch, progress to `sent`, the emails arriving.

Real parts only: uvicorn running the app, a Celery worker on Redis sending over SMTP to an aiosmtpd
server, Chromium signed in through the login page. axe-core on every page; screenshots in
tests/artifacts/console/campaign-*.png.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm.config import Settings
from crm.content import service as content
from crm.db import session_scope
from crm.segments import service as segments
from tests.browser import DESKTOP, TABLET, check_page, chromium, sign_in
from tests.console.helpers import make_member
from tests.factories import make_contact
from tests.harness import Process, celery_worker, env_for, free_port, wait_http
from tests.helpers import links_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

EDITOR, VIEWER = "ed@staff.example.org", "vi@staff.example.org"
GUESTS = {"ann@example.org": ("Ann", "Lee", "en"), "bo@example.org": ("Bo", "Diaz", "es"),
          "cy@example.org": ("Cy", "Park", "en")}


@pytest.fixture
def live(live_settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """The API and a worker whose emails link back to this very API; slow sending, to watch it go."""
    port = free_port()
    settings = live_settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}", "send_rate": 0.3})
    base = f"http://127.0.0.1:{port}"
    worker = celery_worker(settings, tmp_path / "worker.log")
    api = Process([sys.executable, "-m", "uvicorn", "crm.asgi:app", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning"], env_for(settings), tmp_path / "api.log").start()
    try:
        wait_http(f"{base}/health", api, timeout=120)  # a loaded CI box can take a while to import the app
    except BaseException:
        api.stop()
        worker.stop()
        raise
    yield settings, base
    api.stop()
    worker.stop()


def _setup(settings: Settings) -> None:
    make_member(settings, EDITOR, "editor")
    make_member(settings, VIEWER, "viewer")
    with session_scope(settings) as s:
        for address, (first, last, lang) in GUESTS.items():
            make_contact(s, email=address, first_name=first, last_name=last, language=lang, tags=["gala-2026"],
                         lists={"newsletter": "confirmed"})
        make_contact(s, email="not.invited@example.org", first_name="Dee", lists={"newsletter": "confirmed"})
        make_contact(s, email="unconfirmed@example.org", first_name="Eve", tags=["gala-2026"],
                     lists={"newsletter": "pending"})
        segments.create_segment(s, {"name": "Gala guests", "rules": {"tag": "gala-2026"}}, EDITOR)
        content.create_item(s, {"title": "Thank you for coming", "url": "https://example.org/gala-thanks"})


def _compose(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    check_page(page, "console", "campaign-list-empty")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("Gala thank-you")
    page.get_by_label("Segment").select_option(label="Gala guests")
    page.get_by_label("HTML body", exact=True).fill('<p>Hello {{ contact.first_name }}, thank you for coming.</p>'
                                        '<p><a href="{{ links.preferences }}">Your email choices</a></p>')
    page.get_by_label("Subject", exact=True).fill("Thank you, {{ contact.first_name")
    page.get_by_role("button", name="Save draft").click()  # the service refuses it, next to the field
    expect(page.locator("#err-subject")).to_contain_text("template error")
    expect(page.get_by_label("Subject", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Gala thank-you")
    check_page(page, "console", "campaign-compose-errors")
    page.get_by_label("Subject", exact=True).fill("Thank you, {{ contact.first_name }}")
    page.get_by_label("Spanish subject").fill("Gracias, {{ contact.first_name }}")
    page.get_by_label("Spanish HTML body").fill("<p>Hola {{ contact.first_name }}, gracias por venir.</p>")
    page.get_by_label("Thank you for coming").check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gala thank-you")
    expect(page.get_by_text("Campaign saved as a draft.")).to_be_visible()
    check_page(page, "console", "campaign-draft")


def _preview_and_test(page: Any, smtp: Any, base: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Preview and send a test").click()
    page.get_by_label("Find a contact").fill("Bo")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Preview as Bo Diaz").click()
    expect(page.get_by_role("heading", name="Shown as Bo Diaz")).to_be_visible()
    expect(page.locator('[data-subject="en"]')).to_have_text("Thank you, Bo")
    expect(page.locator('[data-subject="es"]')).to_have_text("Gracias, Bo")
    expect(page.frame_locator('iframe[title="Spanish email as HTML"]').get_by_text("Hola Bo, gracias por venir."))\
        .to_be_visible()
    expect(page.get_by_label("English email as plain text")).to_contain_text("Hello Bo, thank you for coming.")
    page.set_viewport_size({"width": 1280, "height": 2800})  # Chromium paints only on-screen iframes
    check_page(page, "console", "campaign-preview")
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_label("Staff addresses")).to_have_value(EDITOR)
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test email sent.")).to_be_visible()
    [test] = smtp.wait_count(EDITOR, 1)
    assert str(test["Subject"]) == "[TEST] Gracias, Bo"  # Bo reads Spanish: the test is what Bo would get
    links = links_in(test, base)
    assert any("/preferences/" in link for link in links) and any("/unsubscribe/" in link for link in links)
    for link in links:  # every link back to the app works (GET never unsubscribes anyone)
        assert httpx.get(link, follow_redirects=True, timeout=10).status_code == 200, link


def _launch_and_watch(page: Any, smtp: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Back to the campaign").click()
    page.get_by_role("link", name="Launch").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send to 3 people?")
    check_page(page, "console", "campaign-launch-confirm")
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("Campaign launched: sending has started.")).to_be_visible()
    state = page.locator("[data-state]")
    expect(state).to_have_text("Sending", timeout=15_000)
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.locator('[data-figure="sent"]')).to_have_text(re.compile(r"^[1-9]"), timeout=30_000)  # the panel moves by itself
    check_page(page, "console", "campaign-sending")
    expect(state).to_have_text("Sent", timeout=60_000)  # htmx polling, no reload
    expect(page.locator('[data-figure="sent"]')).to_have_text("3")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.locator("#status")).not_to_have_attribute("hx-trigger", "every 3s")
    check_page(page, "console", "campaign-sent")
    got = {address: smtp.wait_count(address, 1) for address in GUESTS}
    assert {a: [str(m["Subject"]) for m in ms] for a, ms in got.items()} == {
        "ann@example.org": ["Thank you, Ann"], "bo@example.org": ["Gracias, Bo"], "cy@example.org": ["Thank you, Cy"]}
    assert smtp.to("not.invited@example.org") == [] and smtp.to("unconfirmed@example.org") == []
    page.set_viewport_size(TABLET)
    check_page(page, "console", "campaign-sent-tablet")


def test_a_whole_campaign_from_the_browser(live: tuple[Settings, str], smtp: Any, chromium_path: str) -> None:
    from playwright.sync_api import expect

    settings, base = live
    _setup(settings)
    with chromium(chromium_path, base) as page:
        sign_in(page, base, EDITOR)
        _compose(page)
        _preview_and_test(page, smtp, base)
        _launch_and_watch(page, smtp)
        page.get_by_role("link", name="All campaigns").click()
        expect(page.get_by_role("cell", name="Sent", exact=True)).to_be_visible()
        expect(page.get_by_text("3 of 3")).to_be_visible()
        check_page(page, "console", "campaign-list")
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, base, VIEWER)
        page.get_by_role("link", name="Campaigns", exact=True).click()
        page.get_by_role("link", name="Gala thank-you").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Gala thank-you")
        for name in ("Launch", "Edit", "Cancel campaign", "New campaign"):
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("button")).to_have_count(1)  # Sign out, nothing else
        check_page(page, "console", "campaign-viewer")
