"""Sections not built yet: each says so, so no navigation link is a 404."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import PermissionDeniedException

from crm.console import navigation
from crm.console.web import ConsoleSection, console_viewer, page, signed_in
from crm.errors import NotFound
from crm.staff.models import StaffRole
from crm.staff.service import has_role


class ComingController(ConsoleSection):
    @get("/{section:str}", guards=[console_viewer], sync_to_thread=True)
    def coming(self, request: Request[Any, Any, Any], section: str) -> Response[str]:
        link = navigation.COMING.get(f"{navigation.PREFIX}/{section}")
        if link is None:
            raise NotFound(f"no console page /staff/{section}")
        who = signed_in(request)
        if link.admin_only and (who is None or not has_role(who.staff, StaffRole.admin)):
            raise PermissionDeniedException("this page needs the admin role")
        return page(request, "coming.html", title=link.name, heading=link.name)
