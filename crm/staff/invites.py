"""Console invitations: a signed, expiring, single-use link that lets a new member set a password.

The link's token (crm.tokens, purpose `staff-invite`) names the member and carries the nonce of
their open invitation. Setting the password clears the nonce, so the link works once; inviting
again replaces the nonce, so only the newest link works. Its lifetime is `CRM_STAFF_INVITE_DAYS`
(crm.links' lifetime table).
"""

from __future__ import annotations

import hmac
import secrets

from sqlmodel import Session

from crm.config import Settings
from crm.errors import Invalid
from crm.links import lifetime_seconds
from crm.staff import passwords
from crm.staff.models import Staff
from crm.tokens import TokenError, make_token, read_token

PATH = "/staff/invite"


class InvitationInvalid(Exception):
    """The link is not (or no longer) an open invitation; the page says so and whom to ask."""


def open_invitation(session: Session, staff: Staff) -> str:
    staff.invite_nonce = secrets.token_urlsafe(16)
    session.add(staff)
    session.flush()
    return staff.invite_nonce


def url(settings: Settings, staff: Staff) -> str:
    assert staff.id is not None and staff.invite_nonce
    token = make_token(settings.resolved_secret("secret_key"), staff.id, "staff-invite",
                       lifetime_seconds(settings, "staff-invite"), extra=staff.invite_nonce)
    return f"{settings.public_base_url}{PATH}/{token}"


def find(session: Session, settings: Settings, token: str) -> Staff:
    try:
        claims = read_token(settings.verification_secrets(), token, "staff-invite")
    except TokenError as exc:
        raise InvitationInvalid(exc.reason) from None
    staff = session.get(Staff, claims.contact_id) if 0 < claims.contact_id < 2**31 else None
    if staff is None or not staff.active or not staff.invite_nonce \
            or not hmac.compare_digest(staff.invite_nonce, claims.extra):
        raise InvitationInvalid("used")
    return staff


def accept(session: Session, settings: Settings, token: str, password: str, repeated: str) -> Staff:
    """Set the member's password from the link and close the invitation."""
    staff = find(session, settings, token)
    if password != repeated:
        raise Invalid.field("password_again", "the two passwords are not the same")
    passwords.set_password(session, staff, password)
    staff.invite_nonce = None
    passwords.clear_failures(session, staff.email)
    session.add(staff)
    session.flush()
    return staff
