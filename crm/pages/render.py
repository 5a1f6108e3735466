"""Jinja2 environment for the public HTML pages (the only place pages are rendered)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Response

PAGES_DIR = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(PAGES_DIR), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def page(name: str, context: dict[str, Any], *, status_code: int = 200, language: str = "en") -> Response[str]:
    html = environment().get_template(name).render(language=language, **context)
    return Response(html, status_code=status_code, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                             "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"})
