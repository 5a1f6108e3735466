"""Each email kind's HTML part, in both languages, rendered in headless Chromium (tests/artifacts/emails/).

Look at them: an email a caregiver finds confusing is a defect. The page also checks what a reader
sees: the footer's text is smaller than the body's, and no raw key shows.
"""

from __future__ import annotations

import pytest

from crm.mail import template_files
from tests.browser import ARTIFACTS, chromium
from tests.mail.every_email import every_email, kind_of
from tests.mail.test_conformance import RAW_KEYS, TEMPLATES, _language_of

pytestmark = [pytest.mark.browser, pytest.mark.integration]
OUT = ARTIFACTS / "emails"


def test_every_email_kind_rendered_in_chromium(settings, chromium_path):
    settings = settings.model_copy(update={"org_website": "https://helpline.example.org",
                                           "org_helpline": "1-800-555-0199", "timezone": "America/New_York"})
    messages = every_email(settings)
    one = {(kind_of(m), _language_of(m)): m for m in messages}
    OUT.mkdir(parents=True, exist_ok=True)
    with chromium(chromium_path, "http://emails.invalid") as page:
        for (kind, lang), msg in sorted(one.items()):
            page.set_content(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
            page.screenshot(path=str(OUT / f"{kind}.{lang}.png"), full_page=True)
            visible = page.inner_text("body")
            assert not [k for k in RAW_KEYS if k in visible], (kind, lang)
            sizes = page.evaluate("""() => {
                const px = e => parseFloat(getComputedStyle(e).fontSize);
                const footer = document.querySelector('.footer') || document.querySelector('div:last-of-type');
                const body = [...document.querySelectorAll('p')].filter(p => !footer.contains(p));
                return {footer: Math.max(...[...footer.querySelectorAll('p, a, strong')].map(px)),
                        body: body.length ? Math.min(...body.map(px)) : 99};
            }""")
            assert sizes["footer"] < sizes["body"], (kind, lang, sizes)
    # To a team address, or to staff (a console invitation): English.
    staff_notices_in_english = {("volunteer-notice", "es"), ("donation-notice", "es"), ("staff-invite", "es")}
    wanted = {(k, lang) for k in template_files(TEMPLATES) for lang in ("en", "es")} - staff_notices_in_english
    assert wanted <= set(one), wanted - set(one)
