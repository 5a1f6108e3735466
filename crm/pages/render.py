"""Jinja2 environments for the public HTML pages (the only place pages are rendered).

Pages are translated with gettext: templates mark text with `_()` / `{% trans %}`
(jinja2.ext.i18n) and each language other than English has a Babel catalogue at
`crm/pages/locale/<lang>/LC_MESSAGES/messages.po`. English is the source text, so
anything missing or fuzzy in a catalogue falls back to English.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Response

from crm.config import Settings, get_settings
from crm.mail import LANGUAGES, wording

PAGES_DIR = Path(__file__).parent / "templates"
LOCALE_DIR = Path(__file__).parent / "locale"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language)
    # Compiled in memory at first use: the .po file is the one thing translators edit.
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str = "en") -> Environment:
    env = Environment(loader=FileSystemLoader(PAGES_DIR), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return wording.install(env)


def pick_language(preferred: str | None = None, accept_language: str | None = None) -> str:
    """The person's language when we know it; else the browser's first supported choice; else English."""
    if preferred in LANGUAGES:
        return preferred  # type: ignore[return-value]
    best, best_q = "en", -1.0
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        if lang in LANGUAGES and q > max(best_q, 0.0):
            best, best_q = lang, q
    return best


def page(name: str, context: dict[str, Any], *, status_code: int = 200, language: str = "en",
         settings: Settings | None = None) -> Response[str]:
    """A public page; `settings` names the organisation in its header and footer (CRM_ORG_*)."""
    lang = language if language in LANGUAGES else "en"
    cfg = settings or get_settings()
    html = environment(lang).get_template(name).render(
        {"language": lang, "timezone": cfg.timezone, "org": wording.org_context(cfg), **context})
    return Response(html, status_code=status_code, media_type="text/html",  # Litestar adds the charset
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                             "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                             "Content-Language": lang})
