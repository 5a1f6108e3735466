"""Words people read instead of raw codes, and dates written for people (CRM_TIMEZONE)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

ROLE_LABELS = {"admin": "Admin", "editor": "Editor", "viewer": "Viewer"}
ROLE_HINTS = {"admin": "everything, including staff and the audit log",
              "editor": "contacts, segments, content, campaigns, volunteers, donations, imports",
              "viewer": "reads everything, changes nothing"}
CONTACT_STATUS = {"active": "Active", "unsubscribed": "Unsubscribed", "bounced": "Bounced",
                  "complained": "Marked as spam", "erased": "Erased"}
PERSON_ROLES = {"patient": "Patient", "caregiver": "Caregiver", "family": "Family member", "survivor": "Survivor",
                "professional": "Health professional", "supporter": "Supporter", "other": "Other"}
LANGUAGES = {"en": "English", "es": "Spanish"}
LISTS = {"newsletter": "Newsletter", "volunteer-updates": "Volunteer updates", "donor-updates": "Donor updates"}
SUBSCRIPTION_STATES = {"pending": "Waiting for confirmation", "confirmed": "Subscribed",
                       "unsubscribed": "Unsubscribed"}
FREQUENCIES = {"weekly": "Weekly digest", "monthly": "Monthly digest", "never": "No digest"}
CONSENT_ACTIONS = {"signup": "Signed up", "confirm": "Confirmed", "unsubscribe": "Unsubscribed",
                   "preferences": "Changed preferences", "staff-create": "Added by staff",
                   "staff-confirm": "Subscribed by staff", "staff-unsubscribe": "Unsubscribed by staff",
                   "staff-pending": "Set to pending by staff", "resubscribe": "Subscribed again",
                   "one-click": "Unsubscribed (one click)", "erased": "Erased"}
DELIVERY_STATUS = {"queued": "Queued", "sending": "Sending", "sent": "Sent", "failed": "Failed",
                   "bounced": "Bounced", "skipped": "Skipped", "cancelled": "Cancelled"}
VOLUNTEER_STATUS = {"interested": "Interested", "contacted": "Contacted", "onboarding": "Onboarding",
                    "active": "Active", "paused": "Paused", "inactive": "Inactive"}
INQUIRY_STATUS = {"new": "New", "assigned": "Assigned", "answered": "Answered", "closed": "Closed"}
INQUIRY_TYPES = {"one-time": "One-time gift", "monthly": "Monthly giving", "tribute-memorial": "Tribute or memorial",
                 "planned-giving": "Planned giving", "corporate-matching": "Corporate matching",
                 "stock-or-daf": "Stock or donor-advised fund", "other": "Other"}
FORMS = {"newsletter": "Newsletter sign-up", "volunteer-interest": "Volunteer interest",
         "donation-inquiry": "Donation inquiry"}


def label(table: dict[str, str], key: str | None, empty: str = "") -> str:
    """The label of a key; an unknown key is shown as itself, tidied, rather than hidden."""
    if not key:
        return empty
    return table.get(key, key.replace("-", " ").replace("_", " ").capitalize())


def when(value: dt.datetime | dt.date | str | None, timezone: str = "UTC") -> str:
    """'2 Mar 2026, 09:05' in the charity's time zone (a date alone: '2 Mar 2026'); ISO text too."""
    if not value:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        local = value.astimezone(ZoneInfo(timezone)) if value.tzinfo else value
        return f"{local.day} {local:%b %Y, %H:%M}"
    return f"{value.day} {value:%b %Y}"
