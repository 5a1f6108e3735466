"""What the preference pages show: plain dicts for crm/pages templates, built from the service's data.

No HTTP and no translation here: the templates translate the fixed keys (lists, areas,
frequencies); interest labels come from the taxonomy in the person's language.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.links import url_for
from crm.preferences.service import Change, Confirmation, SaveResult, preferences_of


def interest_labels(session: Session, language: str) -> dict[str, tuple[str, str]]:
    """{key: (label, description)} in the person's language, English where a translation is missing."""
    out = {}
    for i in contacts.list_interests(session):
        if language == "es":
            out[i.key] = (i.label_es or i.label, i.description_es or i.description)
        else:
            out[i.key] = (i.label, i.description)
    return out


def _change_row(change: Change, labels: dict[str, tuple[str, str]]) -> dict[str, Any]:
    row: dict[str, Any] = {"field": change.field, "list_key": change.list_key,
                           "before": change.before, "after": change.after}
    if change.field in ("interests", "areas", "availability"):
        before, after = set(change.before or []), set(change.after or [])

        def name(key: str) -> str:
            return labels[key][0] if change.field == "interests" and key in labels else key

        row["added"] = [name(k) for k in sorted(after - before)]
        row["removed"] = [name(k) for k in sorted(before - after)]
    if change.field == "paused_until":
        row["after"] = change.after.isoformat() if isinstance(change.after, dt.date) else change.after
    return row


def preferences_page(session: Session, contact: Contact, action: str, today: dt.date, *,
                     result: SaveResult | None = None, errors: dict[str, str] | None = None,
                     changes: list[Change] | None = None) -> dict[str, Any]:
    prefs = preferences_of(session, contact)
    labels = interest_labels(session, contact.language)
    chosen = set(prefs["interests"])
    volunteer = prefs.get("volunteer")
    # Area and availability labels live in the templates; the view only orders the person's choices.
    if volunteer is not None:
        volunteer = {**volunteer, "areas": set(volunteer["areas"]), "availability": set(volunteer["availability"])}
    all_changes = (result.changes if result else []) + (changes or [])
    return {
        "email": contact.email,
        "status": contact.status,
        "action": action,
        "interests": [{"key": k, "label": lab, "description": desc, "checked": k in chosen}
                      for k, (lab, desc) in labels.items()],
        "frequency": prefs["frequency"],
        "lists": prefs["lists"],
        "volunteer": volunteer,
        "pause_min": (today + dt.timedelta(days=1)).isoformat(),
        "pause_example": (today + dt.timedelta(days=30)).isoformat(),
        "saved": result is not None or changes is not None,
        "changes": [_change_row(c, labels) for c in all_changes],
        "check_inbox": result.check_inbox if result else [],
        "errors": errors or {},
    }


def confirm_page(session: Session, settings: Settings, confirmation: Confirmation) -> dict[str, Any]:
    contact = confirmation.contact
    assert contact.id is not None
    labels = interest_labels(session, contact.language)
    return {"first_name": contact.first_name, "frequency": confirmation.frequency,
            "list_key": confirmation.list_key,
            "interests": [labels[k][0] for k in confirmation.interests if k in labels],
            "preferences_url": url_for(settings, contact.id, "preferences")}


def unsubscribe_page(settings: Settings, contact: Contact, action: str, *, done: bool) -> dict[str, Any]:
    assert contact.id is not None
    return {"email": contact.email, "action": action, "done": done,
            "preferences_url": url_for(settings, contact.id, "preferences")}
