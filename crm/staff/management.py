"""Staff management: list, change role, deactivate, and issue or revoke a member's API token.

A member has one API token at a time (only its hash is stored). Revoking replaces the hash with
the hash of a secret nobody holds, so the old token stops on the very next request; deactivating
does the same and also turns the member off, whatever credentials they still hold.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlmodel import Session

from crm.errors import Conflict, Invalid, NotFound
from crm.staff import sessions
from crm.staff.models import ROLE_RANK, Staff, StaffRole
from crm.staff.service import email_key, hash_token


def get_staff(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"no staff member {staff_id}")
    return staff


def find_staff(session: Session, email: str) -> Staff:
    key = email_key(email)
    staff = session.scalars(select(Staff).where(Staff.email == key)).first()
    if staff is None:
        raise NotFound(f"no staff member {key}", fields={"email": "no staff member has this address"})
    return staff


def list_staff(session: Session) -> list[Staff]:
    # Staff are a handful of people, never a list that needs paging.
    return list(session.scalars(select(Staff).order_by(Staff.id)))


def _active_admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Staff).where(
        Staff.role == StaffRole.admin, Staff.active.is_(True))) or 0


def _keep_an_admin(session: Session, staff: Staff) -> None:
    if staff.role == StaffRole.admin and staff.active and _active_admins(session) <= 1:
        raise Conflict("this is the last active admin; make another admin first",
                       fields={"staff": "the last active admin cannot be demoted or deactivated"})


def revoke_token(session: Session, staff: Staff) -> None:
    staff.token_hash = hash_token("revoked:" + secrets.token_urlsafe(32))
    session.add(staff)


def issue_token(session: Session, staff: Staff) -> str:
    """A new API token for the member (shown once); the previous one stops working."""
    if not staff.active:
        raise Conflict(f"{staff.email} is deactivated", fields={"staff": "is deactivated"})
    token = "crm_" + secrets.token_urlsafe(32)
    staff.token_hash = hash_token(token)
    session.add(staff)
    return token


def deactivate(session: Session, staff: Staff) -> None:
    _keep_an_admin(session, staff)
    staff.active = False
    revoke_token(session, staff)
    assert staff.id is not None
    sessions.end_all(session, staff.id)  # console sign-ins end at once, like the token


def reactivate(session: Session, staff: Staff) -> None:
    # The member comes back without a working token: an admin issues a fresh one.
    staff.active = True
    session.add(staff)


def change_role(session: Session, staff: Staff, role: str) -> None:
    if role not in ROLE_RANK:
        raise Invalid.field("role", f"unknown role {role!r}; expected one of {', '.join(ROLE_RANK)}")
    if role != staff.role:
        _keep_an_admin(session, staff)
    staff.role = role
    session.add(staff)


def apply_patch(session: Session, staff: Staff, role: str | None, active: bool | None) -> Staff:
    if role is not None:
        change_role(session, staff, role)
    if active is False and staff.active:
        deactivate(session, staff)
    elif active is True and not staff.active:
        reactivate(session, staff)
    session.flush()
    return staff
