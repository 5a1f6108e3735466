"""Absolute URLs with signed tokens, for every link an email carries."""

from __future__ import annotations

from crm.config import Settings
from crm.tokens import Purpose, make_token

DAY = 86400
# The person test emails are rendered for when staff choose none: no contact row has id 0, and
# the pages its links reach say so instead of showing the invalid-link page.
SAMPLE_CONTACT_ID = 0


def lifetime_seconds(settings: Settings, purpose: str) -> int:
    """How long a link of `purpose` stays valid: the one table of token lifetimes."""
    days = {
        "confirm": settings.confirm_token_days,
        "preferences": settings.preferences_token_days,
        "unsubscribe": settings.unsubscribe_token_days,
        "staff-invite": settings.staff_invite_days,
    }.get(purpose, settings.unsubscribe_token_days)  # click, open, respond: as long as the email lives
    return days * DAY


def token_for(settings: Settings, contact_id: int, purpose: Purpose, *, extra: str = "") -> str:
    return make_token(settings.resolved_secret("secret_key"), contact_id, purpose,
                      lifetime_seconds(settings, purpose), extra=extra)


def url_for(settings: Settings, contact_id: int, purpose: Purpose, *, extra: str = "") -> str:
    return f"{settings.public_base_url}/{purpose}/{token_for(settings, contact_id, purpose, extra=extra)}"


def person_links(settings: Settings, contact_id: int) -> dict[str, str]:
    """`links` as every template sees it."""
    return {
        "preferences": url_for(settings, contact_id, "preferences"),
        "unsubscribe": url_for(settings, contact_id, "unsubscribe"),
    }

