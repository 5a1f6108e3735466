"""The console's Jinja2 environment (autoescaped, strict), the same pattern as crm.pages.render."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from crm.config import get_settings

TEMPLATES_DIR = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(name: str, context: dict[str, Any]) -> str:
    # The layout's header names the organisation (CRM_ORG_NAME); web.page does not pass settings.
    return environment().get_template(name).render(**{"org_name": get_settings().org_name, **context})
