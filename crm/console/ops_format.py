"""Words and dates for the operations pages (dashboard, donations, imports, audit, suppressions).

Staff read labels, not codes, and dates as people write them.
"""

from __future__ import annotations

import datetime as dt

INQUIRY_TYPES = {"one-time": "One-time gift", "monthly": "Monthly giving", "tribute-memorial": "Tribute or memorial",
                 "planned-giving": "Planned giving (bequest)", "corporate-matching": "Corporate matching",
                 "stock-or-daf": "Stock or donor-advised fund", "other": "Other question"}
INQUIRY_STATES = {"new": "New", "assigned": "Assigned", "answered": "Answered", "closed": "Closed"}
JOB_STATES = {"waiting": "Waiting for column choices", "queued": "Waiting to start", "running": "Importing",
              "done": "Finished", "failed": "Failed"}
LANGUAGES = {"en": "English", "es": "Spanish"}
CAMPAIGN_STATES = {"sending": "Sending", "scheduled": "Scheduled"}
AUDIT_ACTIONS = {
    "contact.export": "Data-subject export", "contact.erase": "Erased a contact",
    "contacts.export_csv": "Exported contacts (CSV)", "contacts.import": "Imported contacts",
    "template.preview": "Previewed a template as a contact", "digest.preview": "Previewed a digest as a contact",
    "segment.preview": "Previewed who a segment matches", "campaign.test": "Sent a test of a campaign",
    "suppression.add": "Added to the suppression list", "suppression.remove": "Removed from the suppression list",
    "staff.change": "Changed a staff member", "staff.token_issue": "Issued an API token",
    "staff.token_revoke": "Revoked an API token",
}


def label(table: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    return table.get(code, code.replace("-", " ").replace("_", " ").replace(".", ": ").capitalize())


def when(value: dt.datetime | None) -> str:
    """`2 Dec 2026, 14:05 UTC`: unambiguous for a team across time zones."""
    if value is None:
        return ""
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def day(value: dt.date) -> str:
    return f"{value.day} {value:%b}"


def age(hours: float) -> str:
    if hours < 1:
        return "under an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    return f"{int(hours // 24)} days"


FILTERS = {"when": when, "day": day, "age": age}
