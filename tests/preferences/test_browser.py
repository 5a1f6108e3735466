"""A person in real headless Chromium, from real emails caught by a real SMTP server.

The API runs as a uvicorn process and a real Celery worker sends the mail, so the links
clicked here are exactly the links a person gets. Every page is checked with axe-core for
WCAG 2.1 A/AA violations and screenshotted into tests/artifacts/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.volunteers import service as volunteers
from tests.harness import ROOT, api_server, celery_worker, free_port
from tests.helpers import link_path, newsletter_body, volunteer_body

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "tests" / "artifacts" / "preferences"
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
def live(live_settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """API + worker whose emails link back to this very API."""
    port = free_port()
    settings = live_settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    worker = celery_worker(settings, tmp_path / "worker.log")
    try:
        api, base = api_server(settings, tmp_path / "api.log", port)
    except BaseException:
        worker.stop()
        raise
    yield settings, base
    api.stop()
    worker.stop()


def check_page(page: Any, name: str) -> None:
    """Screenshot, then axe: zero WCAG 2.1 A/AA violations."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def phone(browser: Any, language: str) -> Any:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale=language, device_scale_factor=1)
    return context.new_page()


def _contact(settings: Settings, email: str) -> dict[str, Any]:
    with session_scope(settings) as s:
        c = s.scalars(select(Contact).where(Contact.email_key == email)).one()
        vol = volunteers.for_contact(s, c.id)
        return {"status": c.status, "interests": contacts.interests_of(s, c.id),
                "subs": {k: (v.state, v.frequency) for k, v in contacts.subscriptions_of(s, c.id).items()},
                "suppressed": contacts.suppression_reason(s, c.email_key),
                "paused_until": vol.paused_until if vol else None}


def test_english_from_signup_email_to_unsubscribe(browser, live, smtp):
    settings, base = live
    address = "reader@example.org"
    assert httpx.post(f"{base}/api/v1/forms/newsletter",
                      json=newsletter_body(email=address, interests=["caregiving"])).status_code == 202
    [confirm] = smtp.wait_count(address, 1)
    page = phone(browser, "en-GB")

    page.goto(base + link_path(confirm, "confirm"))
    assert "your subscription is confirmed" in page.locator("h1").inner_text()
    check_page(page, "en-confirm")

    welcome = smtp.wait_count(address, 2)[-1]
    preferences = base + link_path(welcome, "preferences")
    response = page.goto(preferences)
    assert response.status == 200 and page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#interest-caregiving").is_checked()
    check_page(page, "en-preferences")

    page.locator("#interest-clinical-trials").check()
    page.locator("#interest-caregiving").uncheck()
    page.get_by_label("Monthly").check()
    page.get_by_role("button", name="Save my preferences").click()
    saved = page.locator("#saved")
    assert "This is what changed" in saved.inner_text()
    assert "Clinical trials" in saved.inner_text() and "Monthly" in saved.inner_text()
    check_page(page, "en-preferences-saved")

    page.goto(preferences)  # a fresh load: what is shown now comes from the database
    assert page.locator("#interest-clinical-trials").is_checked()
    assert not page.locator("#interest-caregiving").is_checked()
    assert page.locator("#frequency-monthly").is_checked()
    assert _contact(settings, address)["subs"]["newsletter"] == ("confirmed", "monthly")

    page.goto(base + link_path(welcome, "unsubscribe"))
    check_page(page, "en-unsubscribe")
    assert _contact(settings, address)["status"] == "active"  # opening the page changed nothing
    page.get_by_role("button", name="Unsubscribe from everything").click()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    check_page(page, "en-unsubscribed")
    state = _contact(settings, address)
    assert state["status"] == "unsubscribed" and state["suppressed"] == "unsubscribed"
    assert state["subs"]["newsletter"][0] == "unsubscribed"


def test_tampered_link_offers_a_fresh_link_by_email(browser, live, smtp):
    settings, base = live
    address = "vic@example.org"
    assert httpx.post(f"{base}/api/v1/forms/volunteer-interest",
                      json=volunteer_body(email=address)).status_code == 202
    [welcome] = smtp.wait_count(address, 1)
    good = link_path(welcome, "preferences")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    page = phone(browser, "en-US")
    response = page.goto(base + tampered)
    assert response.status == 400
    assert page.locator("h1").inner_text() == "This link does not work"
    check_page(page, "en-link-problem")

    page.get_by_label("Your email address").fill(address)
    page.get_by_role("button", name="Email me a fresh link").click()
    assert "If this address is on our list" in page.locator("main").inner_text()
    check_page(page, "en-fresh-link-sent")
    fresh = smtp.wait_count(address, 2)[-1]
    assert fresh["Subject"] == "Your fresh link to manage your emails"
    assert page.goto(base + link_path(fresh, "preferences")).status == 200


def test_spanish_volunteer_changes_everything(browser, live, smtp):
    settings, base = live
    address = "lucia@example.org"
    body = volunteer_body(email=address, first_name="Lucía", language="es", newsletter=True,
                          areas=["transport-to-treatment"], availability=["weekends"])
    assert httpx.post(f"{base}/api/v1/forms/volunteer-interest", json=body).status_code == 202
    messages = smtp.wait_count(address, 2)
    welcome = next(m for m in messages if "/unsubscribe/" in m.get_body(("plain",)).get_content()
                   and "/confirm/" not in m.get_body(("plain",)).get_content())
    confirm = next(m for m in messages if m is not welcome)
    page = phone(browser, "es-ES")

    page.goto(base + link_path(confirm, "confirm"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert "confirmada" in page.locator("h1").inner_text()
    check_page(page, "es-confirm")

    preferences = base + link_path(welcome, "preferences")
    page.goto(preferences)
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text() == "Sus preferencias de correo"
    check_page(page, "es-preferences")

    pause = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    page.locator("#interest-tobacco-cessation").check()
    page.get_by_label("Mensual").check()
    page.locator("#area-peer-support").check()
    page.locator("#availability-weekday-evenings").check()
    page.locator("#paused_until").fill(pause)
    page.get_by_role("button", name="Guardar mis preferencias").click()
    assert "Guardado" in page.locator("#saved").inner_text()
    assert "Apoyo entre pares" in page.locator("#saved").inner_text()
    check_page(page, "es-preferences-saved")

    page.goto(preferences)
    assert page.locator("#interest-tobacco-cessation").is_checked()
    assert page.locator("#frequency-monthly").is_checked()
    assert page.locator("#area-peer-support").is_checked()
    assert page.locator("#paused_until").input_value() == pause
    state = _contact(settings, address)
    assert "tobacco-cessation" in state["interests"] and state["paused_until"].isoformat() == pause

    page.goto(base + link_path(welcome, "unsubscribe"))
    assert page.locator("h1").inner_text() == "Darse de baja"
    check_page(page, "es-unsubscribe")
    page.get_by_role("button", name="Darme de baja de todo").click()
    assert page.locator("h1").inner_text() == "Se ha dado de baja"
    check_page(page, "es-unsubscribed")
    assert _contact(settings, address)["status"] == "unsubscribed"

    page.goto(base + link_path(welcome, "preferences")[:-3] + "zzz")
    assert page.locator("h1").inner_text() == "Este enlace no funciona"
    check_page(page, "es-link-problem")
