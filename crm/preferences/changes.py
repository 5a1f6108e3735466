"""What a person asks to change in their preferences, read and checked (JSON or the page's form).

Every bad field is named at once; nothing here writes: crm.preferences.service saves the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from crm.contacts import service as contacts
from crm.contacts.models import Contact, Frequency, ListKey, SubscriptionState
from crm.errors import Invalid
from crm.forms.validation import Errors
from crm.mail import LANGUAGES
from crm.volunteers import service as volunteers

LISTS = [k.value for k in ListKey]
FREQUENCIES = [f.value for f in Frequency]
WANTED = (SubscriptionState.pending, SubscriptionState.confirmed)


@dataclass
class PreferencesUpdate:
    """A validated change; a field left None was not sent and stays as it is."""

    first_name: str | None = None
    language: str | None = None
    interests: list[str] | None = None
    frequency: str | None = None
    lists: dict[str, bool] | None = None  # list -> wanted
    areas: list[str] | None = None
    availability: list[str] | None = None
    paused_until: dt.date | None = None
    set_paused_until: bool = False
    shift_reminders: bool | None = None


def _one_of(errors: Errors, name: str, value: Any, allowed: list[str]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        errors.add(name, f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
        return None
    return str(value)


def _keys(errors: Errors, name: str, values: Any, allowed: list[str] | set[str], label: str) -> list[str] | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        errors.add(name, f"must be a list of {label} keys")
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.add(name, f"unknown {label} {', '.join(repr(v) for v in unknown)}; expected any of "
                         f"{', '.join(sorted(allowed))}")
        return None
    return list(dict.fromkeys(values))


def _pause_date(errors: Errors, value: Any, today: dt.date) -> dt.date | None:
    try:
        day = volunteers.parse_date(value, "paused_until")
    except Invalid as exc:
        errors.fields.update(exc.fields)
        return None
    if day is not None and day <= today:
        errors.add("paused_until", f"must be a date after today ({today.isoformat()})")
        return None
    if day is not None and day > today + dt.timedelta(days=731):
        errors.add("paused_until", "must be within two years")
        return None
    return day


def parse_json(session: Session, contact: Contact, data: Any, today: dt.date) -> PreferencesUpdate:
    """PUT body: the GET shape, changed. Unknown or bad fields are a 400 naming each."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors = Errors()
    known = {"email", "first_name", "language", "status", "interests", "frequency", "lists", "volunteer"}
    for extra in sorted(set(data) - known):
        errors.add(extra, f"unknown field; expected any of {', '.join(sorted(known))}")
    if "email" in data and (not isinstance(data["email"], str)
                            or data["email"].strip().lower() != (contact.email or "").lower()):
        errors.add("email", "cannot be changed here; sign up with the new address instead")
    if "status" in data and data["status"] != contact.status:
        errors.add("status", "cannot be set; use lists, or POST /unsubscribe/{token} to leave everything")
    update = PreferencesUpdate(
        first_name=errors.run("first_name", contacts.clean_text, data.get("first_name"), "first_name",
                              max_length=100) if "first_name" in data else None,
        language=_one_of(errors, "language", data.get("language"), LANGUAGES),
        interests=_keys(errors, "interests", data.get("interests"), contacts.interest_keys(session), "interest"),
        frequency=_one_of(errors, "frequency", data.get("frequency"), FREQUENCIES),
    )
    lists = data.get("lists")
    if lists is not None:
        if not isinstance(lists, dict):
            errors.add("lists", "must be an object of list -> state")
        else:
            update.lists = {}
            for key, state in lists.items():
                if key not in LISTS:
                    errors.add(f"lists.{key}", f"unknown list; expected any of {', '.join(LISTS)}")
                elif state not in [s.value for s in SubscriptionState]:
                    errors.add(f"lists.{key}", "must be pending, confirmed or unsubscribed")
                else:
                    update.lists[key] = state in WANTED
    vol = data.get("volunteer")
    if vol is not None:
        if not isinstance(vol, dict):
            errors.add("volunteer", "must be an object {areas, availability, paused_until}")
        elif contact.id is not None and volunteers.for_contact(session, contact.id) is None:
            errors.add("volunteer", "there is no volunteer profile for this person")
        else:
            for extra in sorted(set(vol) - {"areas", "availability", "paused_until", "shift_reminders"}):
                errors.add(f"volunteer.{extra}",
                           "unknown field; expected areas, availability, paused_until, shift_reminders")
            if "shift_reminders" in vol:
                if isinstance(vol["shift_reminders"], bool):
                    update.shift_reminders = vol["shift_reminders"]
                else:
                    errors.add("volunteer.shift_reminders", "must be true or false")
            update.areas = _keys(errors, "volunteer.areas", vol.get("areas"), volunteers.AREAS, "area")
            update.availability = _keys(errors, "volunteer.availability", vol.get("availability"),
                                        volunteers.AVAILABILITY, "availability")
            if "paused_until" in vol:
                update.set_paused_until = True
                update.paused_until = _pause_date(errors, vol["paused_until"], today)
    errors.raise_if_any()
    return update


def parse_form(session: Session, contact: Contact, form: Mapping[str, list[str]], today: dt.date
               ) -> PreferencesUpdate:
    """The preference centre's own form: unchecked boxes are absent, so absent means "none"."""
    errors = Errors()

    def one(name: str) -> str | None:
        values = form.get(name) or []
        return values[0] if values else None

    lists = _keys(errors, "lists", form.get("lists", []), LISTS, "list")
    update = PreferencesUpdate(
        language=_one_of(errors, "language", one("language"), LANGUAGES),
        interests=_keys(errors, "interests", form.get("interests", []), contacts.interest_keys(session), "interest"),
        frequency=_one_of(errors, "frequency", one("frequency"), FREQUENCIES),
        lists={key: key in (lists or []) for key in LISTS} if lists is not None else None,
    )
    if contact.id is not None and volunteers.for_contact(session, contact.id) is not None:
        update.areas = _keys(errors, "areas", form.get("areas", []), volunteers.AREAS, "area")
        update.availability = _keys(errors, "availability", form.get("availability", []),
                                    volunteers.AVAILABILITY, "availability")
        update.set_paused_until = True
        update.paused_until = _pause_date(errors, one("paused_until"), today)
        update.shift_reminders = one("shift_reminders") is not None
    errors.raise_if_any()
    return update
