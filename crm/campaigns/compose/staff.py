"""Staff-authored subjects and bodies: compiled in the bounded sandbox (SPEC 7, crm.mail.sandbox)."""

from __future__ import annotations

import re
from html import unescape

from jinja2 import Template

from crm.mail.sandbox import BoundedSandbox

STAFF_SANDBOX = BoundedSandbox(autoescape=False, trim_blocks=True, lstrip_blocks=True)
_STAFF_SANDBOX_HTML = BoundedSandbox(autoescape=True, trim_blocks=True, lstrip_blocks=True)


def staff_template(source: str, *, html: bool) -> Template:
    return (_STAFF_SANDBOX_HTML if html else STAFF_SANDBOX).from_string(source)


_TAG_BREAKS = re.compile(r"<\s*(br|/p|/h[1-6]|/li|/tr|/div)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")


def text_from_html(source: str) -> str:
    """A plain-text body for staff who wrote only HTML: derived once per campaign, from the source."""
    text = _TAG_BREAKS.sub("\n", source)
    text = _TAGS.sub("", text)
    text = unescape(text)
    lines = [ln.strip() for ln in text.splitlines()]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()
