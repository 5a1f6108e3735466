"""The console's optional second factor: TOTP (RFC 6238, 30-second steps, 6 digits) with pyotp.

A member enrols by adding the secret (shown as text and as an otpauth:// URI, no QR image) to an
authenticator app and typing one code from it; only then is it trusted. Each accepted code's time
step is remembered, so a code seen over a shoulder cannot sign in a second time. An admin may
require the second factor for admins or for everyone (`console_setting` row `totp_required`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import pyotp
from sqlmodel import Session

from crm.db import utcnow
from crm.errors import Invalid
from crm.staff.models import ConsoleSetting, Staff, StaffRole

ISSUER = "Charity CRM"
SETTING = "totp_required"
STEP = 30


class Requirement(StrEnum):
    nobody = "nobody"
    admins = "admins"
    everyone = "everyone"


REQUIREMENT_LABELS = {Requirement.nobody: "Optional for everyone", Requirement.admins: "Required for admins",
                      Requirement.everyone: "Required for everyone"}


def requirement(session: Session) -> Requirement:
    row = session.get(ConsoleSetting, SETTING)
    try:
        return Requirement(row.value) if row else Requirement.nobody
    except ValueError:
        return Requirement.nobody


def set_requirement(session: Session, value: str) -> Requirement:
    if value not in Requirement.__members__:
        raise Invalid.field("totp_required", f"unknown choice {value!r}; expected one of {', '.join(Requirement)}")
    row = session.get(ConsoleSetting, SETTING) or ConsoleSetting(key=SETTING, value=value)
    row.value = value
    session.add(row)
    return Requirement(value)


def required_for(session: Session, staff: Staff) -> bool:
    rule = requirement(session)
    return rule == Requirement.everyone or (rule == Requirement.admins and staff.role == StaffRole.admin)


def begin_enrolment(session: Session, staff: Staff) -> str:
    """A fresh secret for the member (kept untrusted until a code from it is typed); returns it."""
    staff.totp_secret, staff.totp_enabled, staff.totp_last_step = pyotp.random_base32(), False, None
    session.add(staff)
    return staff.totp_secret


def uri(staff: Staff) -> str:
    assert staff.totp_secret is not None
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=staff.email, issuer_name=ISSUER)


def _accept(staff: Staff, code: str, now: dt.datetime) -> int | None:
    """The time step the code belongs to (this step or one either side, for clock drift), or None."""
    code = "".join(ch for ch in code if ch.isdigit())
    if staff.totp_secret is None or len(code) != 6:
        return None
    totp = pyotp.TOTP(staff.totp_secret)
    step = int(now.timestamp()) // STEP
    for candidate in (step, step - 1, step + 1):
        if pyotp.utils.strings_equal(totp.at(candidate * STEP), code):
            return candidate
    return None


def verify(session: Session, staff: Staff, code: str, now: dt.datetime | None = None) -> bool:
    """True once per code: the step is remembered and no earlier or equal step is accepted again."""
    step = _accept(staff, code, now or utcnow())
    if step is None or (staff.totp_last_step is not None and step <= staff.totp_last_step):
        return False
    staff.totp_last_step = step
    session.add(staff)
    return True


def confirm_enrolment(session: Session, staff: Staff, code: str, now: dt.datetime | None = None) -> bool:
    if not verify(session, staff, code, now):
        return False
    staff.totp_enabled = True
    session.add(staff)
    return True


def remove(session: Session, staff: Staff) -> None:
    staff.totp_secret, staff.totp_enabled, staff.totp_last_step = None, False, None
    session.add(staff)
