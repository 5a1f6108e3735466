"""Every page and every email exists in English and Spanish; a gap in either fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from crm.config import PROJECT_ROOT
from crm.mail import LANGUAGES, PARTS, template_files
from crm.pages.render import PAGES_DIR, catalogue_path, pick_language

EMAIL_DIR = PROJECT_ROOT / "templates" / "email"


def page_messages() -> dict[str, str]:
    """{msgid: first template using it}, extracted the way Babel's jinja2 extractor does."""
    found: dict[str, str] = {}
    for path in sorted(PAGES_DIR.rglob("*.html")):
        with path.open("rb") as fh:
            for _, _, message, _ in babel_extract(fh, ("_", "gettext", "ngettext"), [],
                                                  {"extensions": "jinja2.ext.i18n"}):
                ids = [m for m in message if m] if isinstance(message, tuple) else [message]
                for msgid in ids:
                    found.setdefault(msgid, path.name)
    return found


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_page_string_is_translated(language):
    with catalogue_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = {msgid: where for msgid, where in page_messages().items() if msgid not in translated}
    assert not missing, f"page text without a {language} translation in {catalogue_path(language)}: {missing}"


@pytest.mark.parametrize("name", sorted(template_files(EMAIL_DIR)))
def test_every_email_exists_in_every_language(name):
    by_language = template_files(EMAIL_DIR)[name]
    for language in LANGUAGES:
        missing = set(PARTS) - by_language.get(language, set())
        assert not missing, f"templates/email/{name}/ has no {language} {sorted(missing)}"
    extra = set(by_language) - set(LANGUAGES)
    assert not extra, f"templates/email/{name}/ has files for unknown languages {extra}"


def test_the_guard_itself_notices_a_one_language_email(tmp_path: Path):
    folder = tmp_path / "lonely"
    folder.mkdir()
    for part in PARTS:
        (folder / part).write_text("x")
    assert template_files(tmp_path)["lonely"]["es"] == set()


@pytest.mark.parametrize(("person", "header", "expected"), [
    ("es", None, "es"), ("en", "es", "en"), (None, "es-MX,es;q=0.9", "es"), (None, "fr, es;q=0.5", "es"),
    (None, "de", "en"), (None, None, "en"), ("fr", "en;q=0.2, es;q=0.8", "es"), (None, "es;q=x", "en"),
])
def test_language_choice_falls_back_to_english(person, header, expected):
    assert pick_language(person, header) == expected
