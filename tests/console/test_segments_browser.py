"""Segments and content in real headless Chromium: the live count, save, rename, refused delete,
a template's syntax error beside its field, and a viewer with no write control."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.db import session_scope
from tests.browser import TABLET, chromium_page, sign_in
from tests.browser import check_page as check_any
from tests.console.helpers import make_member
from tests.factories import make_contact

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def check_page(page: Any, name: str) -> None:
    check_any(page, "console", name)


def _people(settings: Settings) -> None:
    with session_scope(settings) as s:
        make_contact(s, email="ann@example.org", first_name="Ann", last_name="Lee", interests=["caregiving"],
                     role="caregiver", lists={"newsletter": "confirmed"})
        make_contact(s, email="bo@example.org", first_name="Bo", last_name="Ng", interests=["caregiving"],
                     role="patient")
        make_contact(s, email="cy@example.org", first_name="Cy", last_name="Ortiz", interests=["donations"],
                     role="caregiver", lists={"newsletter": "confirmed"})


def test_build_a_segment_watch_the_count_save_rename_and_a_refused_delete(
        settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _people(settings)
    make_member(settings, "ed@staff.example.org", "editor")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "ed@staff.example.org")
        page.get_by_role("link", name="Segments", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Segments")
        check_page(page, "segments-empty")
        page.get_by_role("link", name="New segment").click()
        status = page.get_by_role("status")
        expect(status).to_contain_text("3 contacts match")
        expect(status).to_contain_text("2 can be mailed on Newsletter")
        page.evaluate("window.__sameDocument = true")
        page.get_by_label("Add a rule", exact=True).select_option(label="Interests")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_role("group", name="Interests")).to_be_visible()
        expect(status).to_contain_text("1 unfinished rule is left out")
        page.get_by_label("Caregiving").check()
        expect(status).to_contain_text("2 contacts match")
        expect(status).to_contain_text("1 can be mailed on Newsletter")
        expect(page.locator("#segment-sample")).to_contain_text("Bo Ng")
        page.get_by_label("Add a rule", exact=True).select_option(label="Role")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_role("group", name="Role").get_by_label("Patient").check()
        expect(status).to_contain_text("1 contact matches")
        expect(page.locator("#segment-sample")).not_to_contain_text("Ann Lee")
        page.get_by_label("Mailable on list").select_option(label="Volunteering news")
        expect(status).to_contain_text("0 can be mailed on Volunteering news")
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
        check_page(page, "segment-builder")
        page.get_by_label("Name").fill("Caregiving patients")
        page.get_by_role("button", name="Save segment").click()
        expect(page).to_have_url(re.compile(r"/staff/segments/\d+\?saved=1$"))
        seg_id = int(re.search(r"/segments/(\d+)", page.url).group(1))
        expect(page.get_by_role("heading", level=1)).to_have_text("Segment: Caregiving patients")
        expect(page.get_by_label("Caregiving")).to_be_checked()  # the rules came back into the builder
        expect(page.get_by_role("group", name="Role").get_by_label("Patient")).to_be_checked()
        expect(page.get_by_role("status")).to_contain_text("1 contact matches")
        check_page(page, "segment-saved")
        page.get_by_label("Name").fill("Patients who care")
        page.get_by_role("button", name="Save segment").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Segment: Patients who care")
        with session_scope(settings) as s:
            s.add(Campaign(name="Spring appeal", subject="Spring", segment_id=seg_id))
        page.get_by_role("link", name="Segments", exact=True).click()
        expect(page.get_by_role("row", name=re.compile("Patients who care"))).to_contain_text("1")
        check_page(page, "segments")
        page.get_by_role("link", name="Patients who care").click()
        expect(page.get_by_text("It cannot be deleted while a campaign uses it.")).to_be_visible()
        page.get_by_role("link", name="Delete this segment").click()
        expect(page.get_by_role("alert")).to_contain_text("Spring appeal")
        check_page(page, "segment-delete-refused")
        page.request.post(f"{base}/staff/segments/{seg_id}/delete", form={"csrf_token": _csrf(page)})
        with session_scope(settings) as s:
            assert s.get(Campaign, 1) is not None
        page.goto(f"{base}/staff/segments")
        expect(page.get_by_role("link", name="Patients who care")).to_be_visible()


def _csrf(page: Any) -> str:
    return str(page.locator('input[name="csrf_token"]').first.get_attribute("value"))


def test_the_builder_fits_a_tablet_and_works_without_javascript(
        settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _people(settings)
    make_member(settings, "ed@staff.example.org", "editor")
    with chromium_page(settings, chromium_path, tmp_path, viewport=TABLET) as (page, base):
        sign_in(page, base, "ed@staff.example.org")
        page.goto(f"{base}/staff/segments/new")
        page.evaluate("document.getElementById('segment-form').replaceWith"
                      "(document.getElementById('segment-form').cloneNode(true))")  # drop the script's listeners
        page.get_by_label("Add a rule", exact=True).select_option(label="Language")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("Spanish").check()
        page.get_by_role("button", name="Count", exact=True).click()  # a full submit, as without JavaScript
        expect(page.get_by_role("status")).to_contain_text("0 contacts match")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        check_page(page, "segment-builder-tablet")


def test_a_template_syntax_error_is_shown_beside_the_field(
        settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        make_contact(s, email="ann.preview@example.org", first_name="Annabel", last_name="Price")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "ed@staff.example.org")
        page.get_by_role("link", name="Content", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Content")
        page.get_by_role("link", name="New content item").click()
        page.get_by_label("Title").fill("Questions to ask")
        page.get_by_label("Web address").fill("https://example.org/questions")
        page.get_by_label("Caregiving").check()
        page.get_by_role("button", name="Save content item").click()
        expect(page.get_by_text("The content item was saved.")).to_be_visible()
        check_page(page, "content-item")
        page.get_by_role("link", name="Content items").click()
        expect(page.get_by_role("link", name="Questions to ask")).to_be_visible()
        check_page(page, "content")
        page.get_by_role("link", name="Email templates").click()
        check_page(page, "templates")
        page.get_by_role("link", name="New template").click()
        page.get_by_label("Name", exact=True).fill("spring-news")
        page.get_by_label("Subject").fill("Hello {{ contact.first_name")
        page.get_by_role("button", name="Save template").click()
        error = page.locator("#subject-error")
        expect(error).to_contain_text("template syntax error")
        expect(page.get_by_label("Subject")).to_have_attribute("aria-describedby", "subject-error")
        check_page(page, "template-error")
        page.get_by_label("Subject").fill("Hello {{ contact.first_name }}")
        page.get_by_label("Find a contact by name or email").fill("ann.preview")
        page.get_by_role("button", name="Find contact").click()
        page.get_by_label("Annabel Price (ann.preview@example.org)").check()
        page.get_by_role("button", name="Preview", exact=True).click()
        expect(page.locator("p.subject")).to_have_text("Hello Annabel")
        expect(page.frame_locator("iframe[title='HTML preview']").get_by_text("Hello Annabel,")).to_be_visible()
        check_page(page, "template-preview")
        page.get_by_role("button", name="Save template").click()
        expect(page.get_by_text("The template was saved.")).to_be_visible()


def test_a_viewer_sees_no_write_control_and_a_forced_post_is_refused(
        settings: Settings, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _people(settings)
    make_member(settings, "val@staff.example.org", "viewer")
    with chromium_page(settings, chromium_path, tmp_path) as (page, base):
        sign_in(page, base, "val@staff.example.org")
        page.get_by_role("link", name="Segments", exact=True).click()
        assert page.get_by_role("link", name="New segment").count() == 0
        page.get_by_role("link", name="Count contacts by rules").click()
        expect(page.get_by_role("status")).to_contain_text("3 contacts match")
        assert page.get_by_role("button", name="Save segment").count() == 0
        check_page(page, "segment-builder-viewer")
        token = _csrf(page)
        forced = page.request.post(f"{base}/staff/segments/new",
                                   form={"csrf_token": token, "r.type": "all", "name": "Mine", "action": "save"})
        assert forced.status == 403
        page.get_by_role("link", name="Content", exact=True).click()
        assert page.get_by_role("link", name="New content item").count() == 0
        page.get_by_role("link", name="Email templates").click()
        page.get_by_role("link", name="campaign", exact=True).click()
        assert page.get_by_role("button", name="Save template").count() == 0
        check_page(page, "template-viewer")
        forced = page.request.post(f"{base}/staff/content/new",
                                   form={"csrf_token": token, "title": "x", "url": "https://example.org/"})
        assert forced.status == 403
