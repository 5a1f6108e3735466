"""Over 1,000 messages of every kind, in both languages: each one valid and complete (SPEC 7, issue 17.9).

Also the wording test: no raw key of the contract (areas, availability, inquiry types, lists, statuses)
reaches an email or a page, and each person's email is in their language.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from litestar.testing import TestClient

from crm.app import create_app
from crm.mail import template_files, wording
from tests.conftest import make_settings
from tests.mail.every_email import LANGS, every_email, kind_of

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
# Making 1,000 messages through the real pipeline (a commit per message sent) takes a minute or two.
pytestmark = pytest.mark.timeout(900)
BULK = {"campaign", "digest", "opportunity-invite"}
STAFF = {"volunteer-notice", "donation-notice", "donation-overdue-summary", "webhook-disabled", "staff-invite",
         "deliverability-alert"}
HREF = re.compile(r'href="([^"]+)"')
# Codes that are not also plain words: seeing one in an email means a label was missed.
RAW_KEYS = sorted({k for kind in ("area", "availability", "inquiry_type") for k in wording.LABELS[kind] if "-" in k}
                  | {"volunteer-updates", "donor-updates", "weekday-daytime"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, migrated: str):
    from tests.conftest import _clean

    _clean(migrated)
    settings = make_settings(tmp_path_factory.mktemp("conformance"), migrated, org_website="https://helpline.example.org",
                             org_helpline="1-800-555-0199", timezone="America/New_York")
    started = time.monotonic()
    messages = every_email(settings, rounds=4, per_language=150)
    return settings, messages, time.monotonic() - started


def _wire(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=policy.SMTP)


def test_over_a_thousand_messages_of_every_kind_in_both_languages(world):
    settings, messages, seconds = world
    kinds = Counter(kind_of(m) for m in messages)
    assert len(messages) >= 1000, kinds
    on_disk = set(template_files(TEMPLATES))
    assert on_disk <= set(kinds), f"kinds never generated: {on_disk - set(kinds)}"
    for kind in on_disk - STAFF:
        langs = {m["Content-Language"] or _language_of(m) for m in messages if kind_of(m) == kind}
        assert langs >= set(LANGS), f"{kind} only in {langs}"
    print(f"{len(messages)} messages in {seconds:.1f} s: {dict(kinds)}")


def _language_of(msg: EmailMessage) -> str:
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return re.search(r'<html lang="(\w+)"', html).group(1)  # type: ignore[union-attr]


def test_each_message_is_complete_and_valid(world):
    settings, messages, _ = world
    for msg in messages:
        kind = kind_of(msg)
        raw = _wire(msg)
        head = raw.split(b"\r\n\r\n", 1)[0]
        parsed = message_from_bytes(raw, policy=policy.default)
        for name in ("Message-ID", "Date", "From", "To", "Subject", "MIME-Version"):
            assert len(parsed.get_all(name) or []) == 1, (kind, name)
        assert not str(parsed["Date"]).endswith("-0000") and re.search(r"[+-]0[45]00$", str(parsed["Date"])), \
            (kind, parsed["Date"])  # the charity's zone, America/New_York
        assert all(len(line) <= 998 for line in raw.split(b"\r\n")), kind
        assert head.isascii(), kind  # non-ASCII subjects and names are encoded words
        assert parsed.get_content_type() == "multipart/alternative", kind
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"], kind
        if kind in BULK:
            assert parsed["List-Unsubscribe"].count("<") == 2 and "/unsubscribe/" in parsed["List-Unsubscribe"]
            assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", kind
            assert parsed["Auto-Submitted"] is None, kind
        else:
            assert parsed["Auto-Submitted"] == "auto-generated", kind
        _check_footer(settings, kind, parsed)


def _check_footer(settings, kind: str, msg: EmailMessage) -> None:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    footer_text = text.rsplit("\n--\n", 1)[-1]
    footer_html = html.split('class="footer"', 1)[-1]
    for part in (footer_text, footer_html):
        assert settings.org_postal_address in part and settings.org_name in part, kind
        assert "1-800-555-0199" in part and "helpline.example.org" in part, kind
        if kind not in STAFF:  # mail to a person: how to change what they get, and how to stop it
            assert "/preferences/" in part and "/unsubscribe/" in part, kind


def test_footer_is_smaller_than_the_body(world):
    _, messages, _ = world
    for msg in {kind_of(m): m for m in messages}.values():
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        body, footer = html.split('class="footer"', 1)
        body_sizes = {int(s) for s in re.findall(r"<p[^>]*font-size: ?(\d+)px", body)}
        footer_sizes = {int(s) for s in re.findall(r"font-size: ?(\d+)px", footer)}
        if body_sizes:
            assert max(footer_sizes) < min(body_sizes), (kind_of(msg), body_sizes, footer_sizes)


def test_every_link_opens_a_working_page_of_this_app(world):
    settings, messages, _ = world
    app = create_app(settings)
    seen: set[tuple[str, str]] = set()
    with TestClient(app=app, base_url=settings.public_base_url) as client:
        for msg in messages:
            kind = kind_of(msg)
            html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
            for url in HREF.findall(html):
                url = url.replace("&amp;", "&")
                if not url.startswith(settings.public_base_url):
                    assert url.startswith(("https://", "tel:")), (kind, url)  # the charity's site, articles
                    continue
                shape = (kind, re.sub(r"/\d+(?=/|$)", "/N", re.sub(r"/[A-Za-z0-9_.-]{20,}", "/TOKEN", url)))
                if shape in seen:
                    continue  # one of each link of each kind: the rest differ only by their token
                seen.add(shape)
                r = client.get(url, follow_redirects=True)
                if kind in STAFF:  # links for staff open the staff side: sign-in, never a missing page
                    assert r.status_code in (200, 401), (kind, url, r.status_code)
                elif re.search(r"/(offers|signups)/\d+", url):  # signed for a real person; the sign-up is made up
                    assert r.status_code in (200, 404), (kind, url, r.status_code)
                else:
                    assert r.status_code == 200, (kind, url, r.status_code)
                    assert "text/html" in r.headers["content-type"], (kind, url)
    assert len(seen) > 40


def test_no_raw_key_reaches_a_person(world):
    _, messages, _ = world
    for msg in messages:
        kind = kind_of(msg)
        for part in ("plain", "html"):
            content = msg.get_body((part,)).get_content()  # type: ignore[union-attr]
            visible = re.sub(r'(href|src)="[^"]*"', "", content)
            visible = re.sub(r"https?://\S+", "", visible)
            leaked = [key for key in RAW_KEYS if key in visible]
            assert not leaked, f"{kind}: raw keys {leaked} in its {part} part"
        subject = str(msg["Subject"])
        assert not [key for key in RAW_KEYS if key in subject], (kind, subject)


def test_spanish_mail_has_no_gendered_welcome_and_labels_in_spanish(world):
    _, messages, _ = world
    spanish = [m for m in messages if _language_of(m) == "es"]
    assert spanish
    for msg in spanish:
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert not re.search(r"\bBienvenid[oa]s?\b|Estimado/a|\bvoluntario activo\b", text), kind_of(msg)
    welcome = next(m for m in spanish if kind_of(m) == "welcome")
    assert "damos la bienvenida" in str(welcome["Subject"]) + welcome.get_body(("plain",)).get_content()
    vol = next(m for m in spanish if kind_of(m) == "volunteer-welcome").get_body(("plain",)).get_content()
    assert "Llevar pacientes a su tratamiento" in vol and "Fines de semana" in vol


def test_confirm_names_the_list_and_the_topics(world):
    _, messages, _ = world
    en = next(m for m in messages if kind_of(m) == "confirm" and _language_of(m) == "en")
    text = en.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Newsletter and content digest" in text
    assert re.search(r"Topics you chose: \w.* and \w", text)


def test_dates_are_formatted_for_the_reader(world):
    _, messages, _ = world
    by = {(kind_of(m), _language_of(m)): m.get_body(("plain",)).get_content() for m in messages}
    # 17:30 UTC is 1:30 PM in New York (EDT on March 14, 2030)
    assert "Thursday, March 14, 2030, 1:30\u202fPM" in by[("shift-reminder", "en")]
    assert "jueves, 14 de marzo de 2030, 13:30" in by[("shift-reminder", "es")]
    assert "April 30, 2030" in by[("qualification-expiring", "en")]
    assert "30 de abril de 2030" in by[("qualification-expiring", "es")]
