"""Staff management for admins (/staff/staff): invite, change role, require two-step sign-in,
deactivate (sessions and token stop at once), issue and revoke personal API tokens (shown once).

Every change is audited with the same action names as the staff API (staff.change,
staff.token_issue, staff.token_revoke), plus staff.invite and console.two_step_required.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar import get as get_route

from crm.console.invites import send_invitation
from crm.console.labels import ROLE_LABELS
from crm.console.web import (
    ConsoleSection,
    Form,
    check_csrf,
    console_admin,
    page,
    session_store,
    staff_email,
)
from crm.db import session_scope
from crm.errors import DomainError
from crm.http import settings_of
from crm.staff import management, totp
from crm.staff.models import ROLE_RANK, Staff
from crm.staff.service import audit, create_staff

BASE = "/staff/staff"


def _page(request: Request[Any, Any, Any], session: Any, status_code: int = 200, *, notice: str | None = None,
          error: str | None = None, token: tuple[str, str] | None = None, invite_email: str = "") -> Response[str]:
    return page(request, "staff/members.html", status_code=status_code, title="Staff",
                members=management.list_staff(session), roles=list(ROLE_RANK)[::-1], role_labels=ROLE_LABELS,
                requirement=totp.requirement(session), requirement_labels=totp.REQUIREMENT_LABELS,
                notice=notice, error=error, token=token, invite_email=invite_email)


class StaffPages(ConsoleSection):
    guards = [console_admin]

    @get_route("/staff", sync_to_thread=True)
    def members(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            return _page(request, session)

    @post("/staff/invite", sync_to_thread=True)
    def invite(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        settings = settings_of(request)
        with session_scope(settings) as session:
            try:
                staff, _ = create_staff(session, data.get("email", ""), data.get("role", ""))
            except DomainError as exc:
                session.rollback()
                return _page(request, session, 400 if exc.fields.get("email") != "already exists" else 409,
                             error=f"Nobody was invited: {exc.message}.", invite_email=data.get("email", "")[:320])
            send_invitation(session, settings, staff, invited_by=staff_email(request))
            audit(session, staff_email(request), "staff.invite", target=staff.email, detail={"role": staff.role})
            return _page(request, session, notice=f"{staff.email} was invited as {ROLE_LABELS[staff.role].lower()}: "
                                                  "the email with their set-password link is on its way.")

    @post("/staff/two-step", sync_to_thread=True)
    def two_step(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            rule = totp.set_requirement(session, data.get("required", ""))
            audit(session, staff_email(request), "console.two_step_required", detail={"required": rule.value})
            return _page(request, session, notice=f"Two-step sign-in: {totp.REQUIREMENT_LABELS[rule].lower()}.")

    @post("/staff/{staff_id:int}/{action:str}", sync_to_thread=True)
    def act(self, request: Request[Any, Any, Any], staff_id: int, action: str, data: Form) -> Response[str]:
        check_csrf(request, data)
        handler = ACTIONS.get(action)
        if handler is None:
            return page(request, "error.html", status_code=404, title="Not found", heading="Not found",
                        message=f"no staff action {action!r}")
        with session_scope(settings_of(request)) as session:
            staff = management.get_staff(session, staff_id)
            try:
                notice, token = handler(request, session, staff, data)
            except DomainError as exc:
                session.rollback()
                return _page(request, session, 409, error=f"Nothing changed: {exc.message}.")
            return _page(request, session, notice=notice, token=token)


Outcome = tuple[str, tuple[str, str] | None]


def _role(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    role = data.get("role", "")
    management.change_role(session, staff, role)
    audit(session, staff_email(request), "staff.change", target=staff.email, detail={"role": role, "active": None})
    return f"{staff.email} is now {ROLE_LABELS.get(role, role).lower()}.", None


def _deactivate(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    management.deactivate(session, staff)
    assert staff.id is not None
    session_store(request).end_all(session, staff.id)  # Redis-held sessions too, not only the table's
    audit(session, staff_email(request), "staff.change", target=staff.email, detail={"role": None, "active": False})
    return f"{staff.email} is deactivated: their sessions and API token stopped working.", None


def _reactivate(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    management.reactivate(session, staff)
    audit(session, staff_email(request), "staff.change", target=staff.email, detail={"role": None, "active": True})
    return f"{staff.email} is active again (with no API token until you create one).", None


def _issue(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    token = management.issue_token(session, staff)
    audit(session, staff_email(request), "staff.token_issue", target=staff.email)
    return f"A new API token for {staff.email}; their previous one stopped working.", (staff.email, token)


def _revoke(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    management.revoke_token(session, staff)
    audit(session, staff_email(request), "staff.token_revoke", target=staff.email)
    return f"{staff.email}'s API token was revoked.", None


def _reinvite(request: Request[Any, Any, Any], session: Any, staff: Staff, data: dict[str, str]) -> Outcome:
    send_invitation(session, settings_of(request), staff, invited_by=staff_email(request))
    audit(session, staff_email(request), "staff.invite", target=staff.email, detail={"role": staff.role})
    return f"A new invitation is on its way to {staff.email}; earlier links stopped working.", None


ACTIONS = {"role": _role, "deactivate": _deactivate, "reactivate": _reactivate, "token": _issue,
           "revoke-token": _revoke, "invite": _reinvite}
