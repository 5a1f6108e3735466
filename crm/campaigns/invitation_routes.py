"""Volunteer invitations over HTTP: staff notify an opportunity's matches; volunteers answer from the link."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from crm.bodies import shaped
from crm.campaigns import invitations
from crm.campaigns.schemas import InvitationsQueued
from crm.http import current_staff, db, requires_editor, requires_viewer, settings_of
from crm.pages.render import page as html_page


class InvitationController(Controller):
    path = "/api/v1/volunteers/opportunities"
    tags = ["volunteers"]
    guards = [requires_viewer]

    @post("/{opportunity_id:int}/notify", guards=[requires_editor], status_code=202, sync_to_thread=True)
    def notify(self, request: Request[Any, Any, Any], opportunity_id: int) -> InvitationsQueued:
        with db(request) as session:
            result = invitations.notify(session, settings_of(request), opportunity_id, current_staff(request).email)
        return shaped(InvitationsQueued, result.as_dict())  # the senders are woken once this commits


class RespondController(Controller):
    """The one-click "I'm interested" link: GET shows a button (scanners follow links), POST records."""

    path = "/respond"
    tags = ["pages"]
    include_in_schema = False

    @get("/{token:str}", sync_to_thread=True)
    def confirm_page(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        return self._answer(request, token, record=False)

    @post("/{token:str}", status_code=200, sync_to_thread=True)
    def record(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        return self._answer(request, token, record=True)

    @staticmethod
    def _answer(request: Request[Any, Any, Any], token: str, *, record: bool) -> Response[str]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                fn = invitations.respond if record else invitations.invitation_from_token
                inv = fn(session, settings, token)
                ctx = {"first_name": inv.contact.first_name, "opportunity": invitations.invite_fields(inv.opportunity),
                       "responded": inv.responded, "action": f"/respond/{token}"}
                language = inv.contact.language
        except invitations.LinkProblem as exc:
            if exc.reason == "sample":
                return html_page("sample_link.html", {}, settings=settings_of(request))
            return html_page("link_problem.html", {"reason": exc.reason},
                             status_code=410 if exc.reason == "expired" else 400, settings=settings_of(request))
        name = "opportunity_thanks.html" if inv.responded else "opportunity_confirm.html"
        return html_page(name, ctx, language=language, settings=settings_of(request))
