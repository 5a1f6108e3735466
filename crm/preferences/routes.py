"""Pages a person reaches from an email: confirm (the preference centre and unsubscribe come with their issue)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.background_tasks import BackgroundTask

from crm.contacts import service as contacts
from crm.http import db, request_meta, settings_of
from crm.links import url_for
from crm.pages.render import page
from crm.preferences import service
from crm.queue import enqueue_outbox


class ConfirmController(Controller):
    path = "/confirm"
    tags = ["pages"]
    include_in_schema = False

    @get("/{token:str}", sync_to_thread=True)
    def confirm(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        settings = settings_of(request)
        try:
            with db(request) as session:
                result, ids = service.confirm(session, settings, token, request_meta(request))
                labels = {i.key: i.label for i in contacts.list_interests(session)}
                contact = result.contact
                assert contact.id is not None
                ctx = {"first_name": contact.first_name, "frequency": result.frequency,
                       "interests": [labels.get(k, k) for k in result.interests],
                       "preferences_url": url_for(settings, contact.id, "preferences")}
        except service.LinkProblem as exc:
            return page("link_problem.html", {"reason": exc.reason}, status_code=400 if exc.reason != "expired" else 410)
        response = page("confirm.html", ctx, language=contact.language)
        response.background = BackgroundTask(enqueue_outbox, settings, ids)
        return response
