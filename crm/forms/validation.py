"""Checking what a public form posted: every bad field named in one 400.

Each checker records its refusal on an Errors and carries on (with None or a default), so one pass
over a post finds every problem instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm.contacts import service as contacts
from crm.contacts.models import Language
from crm.errors import Invalid


@dataclass
class Errors:
    fields: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Invalid as exc:
            self.fields.update(exc.fields or {name: exc.message})
            return None

    def add(self, name: str, reason: str) -> None:
        self.fields.setdefault(name, reason)

    def raise_if_any(self) -> None:
        if self.fields:
            summary = "; ".join(f"{k}: {v}" for k, v in self.fields.items())
            raise Invalid(summary, fields=dict(self.fields))


def choice(errors: Errors, name: str, value: Any, allowed: list[str], *, default: str | None = None) -> str | None:
    if value in (None, ""):
        return default
    if value not in allowed:
        errors.add(name, f"unknown {name.replace('_', ' ')} {value!r}; expected one of {', '.join(allowed)}")
        return default
    return str(value)


def choices(errors: Errors, name: str, values: Any, allowed: list[str], *, label: str, required: bool) -> list[str]:
    if values is None:
        values = []
    if not isinstance(values, list):
        errors.add(name, "must be a list")
        return []
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.add(name, f"unknown {label} {', '.join(repr(v) for v in unknown)}; expected any of {', '.join(allowed)}")
        return []
    if required and not values:
        errors.add(name, f"choose at least one {label}")
    return list(dict.fromkeys(values))


def text_list(errors: Errors, name: str, value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        errors.add(name, "must be a list of text")
        return []
    out: list[str] = []
    for item in items:
        text = errors.run(name, contacts.clean_text, item, name, max_length=100)
        if text:
            out.append(text)
    return out


def common_fields(errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": errors.run("email", contacts.normalize_email, data.get("email")),
        "first_name": errors.run("first_name", contacts.clean_text, data.get("first_name"), "first_name",
                                 max_length=100),
        "last_name": errors.run("last_name", contacts.clean_text, data.get("last_name"), "last_name",
                                max_length=100),
        "phone": errors.run("phone", contacts.clean_text, data.get("phone"), "phone", max_length=40),
        "source_url": errors.run("source_url", contacts.clean_text, data.get("source_url"), "source_url",
                                 max_length=2000),
        "language": choice(errors, "language", data.get("language"), [lang.value for lang in Language]),
    }


def require(errors: Errors, values: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in errors.fields and not values.get(name):
            errors.add(name, "is required")
