"""Real headless Chromium against a real API process: one launch, one request guard, one axe check.

    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "ed@staff.example.org")
        ...
        check_page(page, "console", "contacts")   # screenshot + axe, 0 WCAG 2.1 A/AA violations

Every request that does not go to the app is aborted and fails the test at the end: nothing the
app serves may load from the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crm.config import Settings
from tests.harness import ROOT, api_server

ARTIFACTS = ROOT / "tests" / "artifacts"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 820, "height": 1180}


def check_page(page: Any, folder: str, name: str) -> None:
    """Screenshot under tests/artifacts/<folder>/, then axe: zero WCAG 2.1 A/AA violations."""
    from axe_playwright_python.sync_playwright import Axe

    (ARTIFACTS / folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / folder / f"{name}.png"), full_page=True)
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def sign_in(page: Any, base: str, email: str, password: str | None = None) -> None:
    """Through the real login page, as a person would."""
    from playwright.sync_api import expect

    from tests.console.helpers import PASSWORD

    page.goto(f"{base}/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@contextmanager
def chromium(chromium_path: str, base: str, viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A page in a fresh browser that may only talk to `base`."""
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=viewport or DESKTOP).new_page()
            page.route("**/*", only_the_app)
            yield page
        finally:
            browser.close()
    assert refused == [], f"the page asked for addresses outside the app: {refused}"


@contextmanager
def chromium_page(settings: Settings, chromium_path: str, tmp_path: Path,
                  viewport: dict[str, int] | None = None) -> Iterator[tuple[Any, str]]:
    """A real API process on `settings` and a browser page that may only talk to it."""
    api, base = api_server(settings, tmp_path / "api.log")
    try:
        with chromium(chromium_path, base, viewport) as page:
            yield page, base
    finally:
        api.stop()
