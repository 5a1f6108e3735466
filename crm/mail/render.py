"""Render the Jinja2 templates of templates/email/ (the only module that reads that folder).

Templates live in one folder per email (`subject.txt`, `body.html`, `body.txt`), each extending
the shared `_layout.*`; a Spanish version sits beside the English one with an `.es` infix
(`body.es.html`), and English is the fallback for any file missing in a language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)

from crm.config import Settings
from crm.mail import wording

LANGUAGES = ("en", "es")
PARTS = ("subject.txt", "body.html", "body.txt")

@lru_cache(maxsize=4)
def environment(templates_dir: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return wording.install(env)


def _localized_name(name: str, part: str, language: str) -> str:
    stem, _, ext = part.rpartition(".")
    return f"{name}/{stem}.{language}.{ext}" if language != "en" else f"{name}/{part}"


def template_files(templates_dir: Path) -> dict[str, dict[str, set[str]]]:
    """{email name: {language: {part, ...}}}: what exists on disk, for the both-languages test."""
    found: dict[str, dict[str, set[str]]] = {}
    for folder in sorted(p for p in templates_dir.iterdir() if p.is_dir()):
        langs: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
        for f in folder.iterdir():
            parts = f.name.split(".")
            lang = parts[1] if len(parts) == 3 else "en"
            base = f"{parts[0]}.{parts[-1]}"
            langs.setdefault(lang, set()).add(base)
        found[folder.name] = langs
    return found


@dataclass(frozen=True)
class CompiledEmail:
    """One email's three templates, parsed once and reused for every recipient."""

    name: str
    language: str
    subject: Template
    html: Template
    text: Template

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        subject = " ".join(self.subject.render(context).split())
        html = css_inline.inline(self.html.render(context))
        text = self.text.render(context).strip() + "\n"
        return RenderedEmail(subject=subject, html=html, text=text)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def compile_email(settings: Settings, name: str, language: str = "en") -> CompiledEmail:
    env = environment(str(settings.templates_dir))
    loaded: list[Template] = []
    for part in PARTS:
        try:
            loaded.append(env.get_template(_localized_name(name, part, language)))
        except TemplateNotFound:
            loaded.append(env.get_template(_localized_name(name, part, "en")))
    return CompiledEmail(name, language, *loaded)


def base_context(settings: Settings, language: str) -> dict[str, Any]:
    """What every template may use besides its own context."""
    return {
        "language": language,
        "timezone": settings.timezone,  # |datetime and |time show the charity's clock
        "org": wording.org_context(settings),
        "public_base_url": settings.public_base_url,
    }


def render(settings: Settings, name: str, context: Mapping[str, Any], language: str = "en") -> RenderedEmail:
    lang = language if language in LANGUAGES else "en"
    return compile_email(settings, name, lang).render({**base_context(settings, lang), **context})
