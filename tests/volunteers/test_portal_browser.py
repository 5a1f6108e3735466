"""The volunteer's own page in headless Chromium at phone size: sign up, cancel, log hours; axe finds nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm.config import Settings
from crm.db import session_scope
from crm.links import token_for
from crm.volunteers import shifts
from crm.volunteers.models import Opportunity, ShiftSignup, VolunteerHours
from tests.factories import make_volunteer
from tests.harness import ROOT, api_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "tests" / "artifacts" / "volunteer"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def base(live_settings: Settings, tmp_path: Path) -> Iterator[str]:
    api, url = api_server(live_settings, tmp_path / "api.log")
    yield url
    api.stop()


def check_page(page: Any, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def _setup(settings: Settings, language: str) -> tuple[int, str]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=4)
    with session_scope(settings) as s:
        opp = Opportunity(title="Road To Recovery driver", area="transport-to-treatment", postal_code="30301")
        s.add(opp)
        s.flush()
        shifts.create(s, settings, opp.id, {"starts_at": start.isoformat(),
                                            "ends_at": (start + dt.timedelta(hours=3)).isoformat(),
                                            "capacity": 2, "location": "Hope Lodge, 1 Main St"}, "coord")
        vol = make_volunteer(s, email=f"page-{language}@example.org", first_name="Rosa", language=language)
        return vol.id, token_for(settings, vol.contact_id, "volunteer")


def test_sign_up_cancel_and_log_hours_on_a_phone(browser, base, live_settings):
    vid, token = _setup(live_settings, "en")
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{base}/volunteer/{token}")
    assert page.get_by_role("heading", name="Open shifts that fit you").is_visible()
    check_page(page, "page-en")
    page.get_by_role("button", name="Sign up for Road To Recovery driver").click()
    assert "Done: you are signed up." in page.get_by_role("status").inner_text()
    check_page(page, "signed-up-en")
    with session_scope(live_settings) as s:
        assert s.scalars(select(ShiftSignup.status).where(ShiftSignup.volunteer_id == vid)).one() == "confirmed"
    page.get_by_role("button", name="Cancel Road To Recovery driver").click()
    assert "Your shift is canceled." in page.get_by_role("status").inner_text()
    page.get_by_label("Date", exact=True).fill(dt.date.today().isoformat())
    page.get_by_label("Hours", exact=True).fill("2.5")
    page.get_by_label("Note (optional)").fill("Drove Mrs. K to the clinic")
    page.get_by_role("button", name="Send hours").click()
    assert "waiting for the team's approval" in page.get_by_role("status").inner_text()
    check_page(page, "hours-en")
    with session_scope(live_settings) as s:
        assert s.scalars(select(ShiftSignup.status).where(ShiftSignup.volunteer_id == vid)).one() == "cancelled"
        row = s.scalars(select(VolunteerHours).where(VolunteerHours.volunteer_id == vid)).one()
        assert (row.hours, row.status, row.logged_by) == (2.5, "pending", "self")


def test_the_page_in_spanish(browser, base, live_settings):
    _, token = _setup(live_settings, "es")
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{base}/volunteer/{token}")
    assert page.locator("html").get_attribute("lang") == "es"
    page.get_by_role("button", name="Inscribirme en Road To Recovery driver").click()
    assert "se ha inscrito" in page.get_by_role("status").inner_text()
    check_page(page, "page-es")
