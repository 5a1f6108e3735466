"""Putting what someone typed back into a form: after a session expired mid-form and they signed in.

The console's own templates are autoescaped, so attribute values never hold a raw `>` and a tag is
found with a plain pattern. Only the form whose `action` is the path the fields were posted to is
touched; hidden fields (the new CSRF token among them), passwords and files keep their values.
"""

from __future__ import annotations

import re
from html import escape, unescape

_TAG = re.compile(r"<(/?)(form|input|textarea|select|option)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r'([a-zA-Z_:-]+)(?:\s*=\s*"([^"]*)")?')
SKIP_TYPES = {"hidden", "password", "file", "submit", "button", "reset", "image"}


def _attrs(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): unescape(m.group(2) or "") for m in _ATTR.finditer(raw)}


def _set_attr(raw: str, name: str, value: str | None) -> str:
    """The tag's attribute text with `name` removed, then added back (as `value`, or bare) unless None."""
    raw = re.sub(rf'\s{name}(?:\s*=\s*"[^"]*")?(?=[\s/]|$)', "", raw)
    if value is None:
        return raw
    addition = f' {name}="{escape(value)}"' if value else f" {name}"
    return raw[:-1] + addition + "/" if raw.endswith("/") else raw + addition


def refill(html: str, action: str, fields: dict[str, list[str]]) -> str:
    out: list[str] = []
    pos, inside, select_name, textarea = 0, False, None, None
    for m in _TAG.finditer(html):
        closing, tag, raw = m.group(1), m.group(2).lower(), m.group(3)
        if textarea is not None and not (closing and tag == "textarea"):
            continue  # inside a textarea: its old text is replaced below
        out.append(html[pos:m.start()] if textarea is None else "")
        pos = m.end()
        if tag == "form":
            inside = not closing and _attrs(raw).get("action", "") == action
        elif inside and not closing:
            raw, textarea, select_name = _one(tag, raw, fields, select_name, textarea)
        elif closing and tag == "select":
            select_name = None
        elif closing and tag == "textarea" and textarea is not None:
            out.append(escape(textarea))
            textarea = None
        out.append(f"<{closing}{m.group(2)}{raw}>")
    out.append(html[pos:])
    return "".join(out)


def _one(tag: str, raw: str, fields: dict[str, list[str]], select_name: str | None,
         textarea: str | None) -> tuple[str, str | None, str | None]:
    attrs = _attrs(raw)
    name = attrs.get("name", "")
    if tag == "input" and name in fields and attrs.get("type", "text").lower() not in SKIP_TYPES:
        kind = attrs.get("type", "text").lower()
        if kind in ("checkbox", "radio"):
            raw = _set_attr(raw, "checked", "" if attrs.get("value", "on") in fields[name] else None)
        else:
            raw = _set_attr(raw, "value", fields[name][0])
    elif tag == "select":
        select_name = name if name in fields else None
    elif tag == "option" and select_name is not None:
        raw = _set_attr(raw, "selected", "" if attrs.get("value", "") in fields[select_name] else None)
    elif tag == "textarea" and name in fields:
        textarea = fields[name][0]
    return raw, textarea, select_name
