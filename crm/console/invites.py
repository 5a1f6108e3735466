"""Sending a console invitation: the `staff-invite` email with its set-password link, via the outbox.

Used by `crm staff create` and by the Staff page; each invitation is queued once (its dedupe key
is the invitation's nonce), so a retried request never mails the person twice.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from crm.config import Settings
from crm.console.labels import ROLE_LABELS, when
from crm.links import lifetime_seconds
from crm.outbox import service as outbox
from crm.staff import invites
from crm.staff.models import Staff

LOGIN_PATH = "/staff/login"


def send_invitation(session: Session, settings: Settings, staff: Staff, invited_by: str) -> int | None:
    """Open a fresh invitation (earlier links stop working) and queue its email; the outbox row id."""
    nonce = invites.open_invitation(session, staff)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime_seconds(settings, "staff-invite"))
    context = {"invite": {"url": invites.url(settings, staff), "email": staff.email,
                          "role_label": ROLE_LABELS.get(staff.role, staff.role).lower(),
                          "invited_by": invited_by, "expires": when(expires, settings.timezone),
                          "login_url": f"{settings.public_base_url}{LOGIN_PATH}"}}
    return outbox.queue(session, "staff-invite", staff.email, context, dedupe_key=f"staff-invite:{staff.id}:{nonce}")
