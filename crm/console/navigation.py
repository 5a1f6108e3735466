"""The console's navigation (SPEC section 10 names every link) and where a sign-in may return to."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from crm.staff.models import Staff, StaffRole
from crm.staff.service import has_role

PREFIX = "/staff"
LOGIN = f"{PREFIX}/login"


@dataclass(frozen=True)
class NavLink:
    name: str
    path: str
    admin_only: bool = False


NAV = (
    NavLink("Dashboard", f"{PREFIX}/"),
    NavLink("Contacts", f"{PREFIX}/contacts"),
    NavLink("Segments", f"{PREFIX}/segments"),
    NavLink("Campaigns", f"{PREFIX}/campaigns"),
    NavLink("Content", f"{PREFIX}/content"),
    NavLink("Volunteers", f"{PREFIX}/volunteers"),
    NavLink("Donations", f"{PREFIX}/donations"),
    NavLink("Imports", f"{PREFIX}/imports"),
    NavLink("Audit", f"{PREFIX}/audit", admin_only=True),
    NavLink("Staff", f"{PREFIX}/staff", admin_only=True),
    NavLink("Suppressions", f"{PREFIX}/suppressions", admin_only=True),
)


def links_for(staff: Staff) -> list[NavLink]:
    admin = has_role(staff, StaffRole.admin)
    return [link for link in NAV if admin or not link.admin_only]


def safe_next(target: str | None) -> str:
    """A console path on this site to return to after sign-in; anything else goes to the dashboard.

    Refuses absolute URLs, scheme-relative `//host` and backslash tricks browsers read as `//`.
    """
    default = f"{PREFIX}/"
    if not target or "\\" in target or any(ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/") and parts.path != PREFIX:
        return default
    if target.startswith("//") or parts.path.startswith(LOGIN):
        return default
    return target
