"""Donor services, imports, audit and suppressions in real headless Chromium: axe and screenshots on every page."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm.config import Settings
from crm.contacts import importer
from crm.db import session_scope
from crm.donations.models import DonationInquiry
from crm.jobs.models import Job
from crm.links import person_links
from crm.mail import render
from tests.browser import TABLET, check_page, chromium_page, sign_in
from tests.console.helpers import make_member
from tests.helpers import donation_body, text_of, to

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def shot(page: Any, name: str) -> None:
    check_page(page, "console", name)


def fits(page: Any) -> None:
    """Nothing wider than the window: no sideways scrolling at this size."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


def test_an_answer_to_a_donation_inquiry_reaches_the_person_in_spanish(settings: Settings, chromium_path: str,
                                                                        tmp_path: Path, sent: Any) -> None:
    from playwright.sync_api import expect

    make_member(settings, "dora@staff.example.org", "editor")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        body = donation_body(email="rosa@example.org", first_name="Rosa", last_name="Vega", language="es",
                             inquiry_type="tribute-memorial", in_honor_of="Mi madre", amount_range="$250-$999",
                             message="¿Puedo donar en memoria de mi madre?")
        assert httpx.post(f"{base}/api/v1/forms/donation-inquiry", json=body).status_code == 202
        sign_in(page, base, "dora@staff.example.org")
        shot(page, "dashboard-ops")
        page.get_by_role("link", name="Donations").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Donations")
        expect(page.get_by_role("cell", name="Tribute or memorial")).to_be_visible()
        assert "$250" not in page.content()  # no amounts in any list
        shot(page, "donations")
        page.get_by_role("link", name="Rosa Vega").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Donation inquiry from Rosa Vega")
        page.get_by_label("Staff member").select_option("dora@staff.example.org")
        page.get_by_role("button", name="Assign").click()
        expect(page.get_by_role("status")).to_have_text("Assigned.")
        answer = "Gracias, Rosa. Sí, puede donar en memoria de su madre; le enviamos la tarjeta."
        page.get_by_label("Answer").fill(answer)
        page.get_by_role("button", name="Preview").click()
        preview = page.get_by_role("region", name="Preview: the email as Rosa Vega will get it (Spanish)")
        expect(preview).to_contain_text(answer)
        shot(page, "donation-inquiry-preview")
        page.get_by_role("button", name="Send answer").click()
        expect(page.get_by_role("status")).to_contain_text("Answer sent")
        expect(page.get_by_role("list").filter(has_text="answered by dora@staff.example.org")).to_be_visible()
        shot(page, "donation-inquiry-answered")
    with session_scope(settings) as s:
        inq = s.scalars(select(DonationInquiry)).one()
        assert inq.status == "answered" and inq.assigned_to == "dora@staff.example.org"
    [mail] = [m for m in to(sent(), "rosa@example.org") if answer in text_of(m)]
    spanish = render(settings, "donation-answer", {"contact": {"first_name": "Rosa"}, "inquiry": {}, "answer": "",
                                                   "links": person_links(settings, 1)}, "es")
    assert mail["Subject"] == spanish.subject


BAD_CSV = ("email,first_name,Given Name,language\n"
           "ann.imp@example.org,Ann,Lee,en\n"
           "not-an-address,Bad,Row,en\n"
           "ben.imp@example.org,Ben,Ode,klingon\n"
           "cy.imp@example.org,Cy,Ray,es\n"
           "dee.imp@example.org,Dee,Fox,en\n"
           "eve.imp@example.org,Eve,Kim,es\n")


def _run_slowly(settings: Settings, job_id: int) -> threading.Thread:
    """The worker's part, run here with a pause after each batch so the page can be seen moving."""
    def work() -> None:
        with session_scope(settings) as s:
            importer.run(s, job_id, batch_size=2, progress=lambda _job: time.sleep(1.5))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_an_import_with_bad_rows_shows_progress_and_the_row_errors(settings: Settings, chromium_path: str,
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "ivo@staff.example.org", "editor")
    csv_file = tmp_path / "walk-signups.csv"
    csv_file.write_text(BAD_CSV)
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "ivo@staff.example.org")
        page.get_by_role("link", name="Imports").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
        shot(page, "imports")
        page.get_by_label("CSV file").set_input_files(str(csv_file))
        page.get_by_role("button", name="Upload and import").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Match the columns of walk-signups.csv")
        shot(page, "import-columns")
        page.get_by_label("Column “given name”").select_option(label="Last name")
        page.get_by_role("button", name="Start import").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Import of walk-signups.csv")
        expect(page.get_by_role("status")).to_contain_text("Waiting to start")
        with session_scope(settings) as s:
            job_id = s.scalars(select(Job.id)).one()
        worker = _run_slowly(settings, job_id)
        expect(page.get_by_role("status")).to_contain_text("Importing", timeout=15000)
        shot(page, "import-running")
        expect(page.get_by_role("status")).to_contain_text("Finished: 6 of 6 rows read", timeout=30000)
        worker.join(10)
        errors = page.get_by_role("table", name="Rows that were not imported as they are")
        expect(errors).to_contain_text("email")
        expect(errors).to_contain_text("unknown language 'klingon'")
        shot(page, "import-done")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the row errors as CSV").click()
        saved = download.value.path()
        lines = Path(saved).read_text().splitlines()
        assert lines[0] == "row,column,problem" and len(lines) == 3
    with session_scope(settings) as s:
        assert s.get(Job, job_id).created == 4


def test_audit_and_suppressions_for_an_admin_and_pages_fit_a_tablet(settings: Settings, chromium_path: str,
                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "ada@staff.example.org", "admin")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "ada@staff.example.org")
        page.get_by_role("link", name="Suppressions").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Suppressions")
        page.get_by_label("Email address").fill("pat.supp@example.org")
        page.get_by_label("Why").select_option(label="Added by staff")
        page.get_by_label("Note (optional)").fill("asked by phone")
        page.get_by_role("button", name="Add to the suppression list").click()
        expect(page.get_by_role("status")).to_have_text("pat.supp@example.org is on the suppression list.")
        expect(page.get_by_role("cell", name="asked by phone; added by ada@staff.example.org")).to_be_visible()
        shot(page, "suppressions")
        page.get_by_role("link", name="Remove pat.supp@example.org").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Remove from the suppression list")
        shot(page, "suppression-remove")
        page.get_by_label("Reason for removal").fill("added by mistake")
        page.get_by_role("button", name="Remove from the list").click()
        expect(page.get_by_role("status")).to_have_text("pat.supp@example.org was removed from the suppression list.")
        page.get_by_role("link", name="Audit").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Audit")
        expect(page.get_by_role("cell", name="Removed from the suppression list")).to_be_visible()
        page.get_by_label("Action").select_option(label="Added to the suppression list")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_role("cell", name="Removed from the suppression list")).to_have_count(0)
        shot(page, "audit")
    with chromium_page(settings, chromium_path, tmp_path / "tablet", viewport=TABLET) as (page, base):
        sign_in(page, base, "ada@staff.example.org")
        for path, name in (("/staff/", "dashboard"), ("/staff/donations", "donations"),
                           ("/staff/imports", "imports"), ("/staff/audit", "audit"),
                           ("/staff/suppressions", "suppressions")):
            page.goto(f"{base}{path}")
            fits(page)
            shot(page, f"{name}-tablet")
