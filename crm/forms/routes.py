"""The website's three public forms and the interest taxonomy."""

from __future__ import annotations

from typing import Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from sqlmodel import Session

from crm.contacts import service as contacts
from crm.db import get_engine
from crm.forms import service
from crm.forms.batch import GroupCommit
from crm.forms.models import DonationForm, NewsletterForm, VolunteerForm
from crm.http import db, request_meta, settings_of
from crm.public_guard import public_json_posts

PUBLIC_BODY_LIMIT = 64 * 1024


class InterestController(Controller):
    path = "/api/v1/interests"
    tags = ["public"]

    @get("/", sync_to_thread=True)
    def list_interests(self, request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        with db(request) as session:
            return [{"key": i.key, "label": i.label, "description": i.description,
                     "label_es": i.label_es, "description_es": i.description_es}
                    for i in contacts.list_interests(session)]


class Accepted(msgspec.Struct):
    """The same answer for a new, known, unsubscribed or suppressed address: nothing is given away."""

    status: str


async def _accept(request: Request[Any, Any, Any], fn: Any, data: dict[str, Any], status: str
                  ) -> Response[Accepted]:
    """Store and answer 202; the outbox publishes the wake-up calls when the transaction commits."""
    answer = Accepted(status)
    if data.get("website"):
        return Response(answer, status_code=202)  # honeypot: look normal, keep nothing
    settings = settings_of(request)
    raw = await request.json()
    meta = request_meta(request)

    def run() -> list[int]:
        with db(request) as session:
            return fn(session, settings, data, meta, raw=raw)

    await to_thread.run_sync(run)
    return Response(answer, status_code=202)


async def _accept_newsletter(request: Request[Any, Any, Any], data: dict[str, Any]) -> Response[Accepted]:
    """The newsletter post: validated alone, then written in a group commit with the signups that
    arrive with it (crm.forms.batch); answered 202 once its group (or its own rerun) committed."""
    answer = Accepted("pending_confirmation")
    if data.get("website"):
        return Response(answer, status_code=202)  # honeypot: look normal, keep nothing
    settings = settings_of(request)
    group: GroupCommit = request.app.state.signup_group
    raw = await request.json()
    meta = request_meta(request)

    def run() -> list[int]:
        with Session(get_engine(settings)) as session:  # reads only the cached taxonomy, or one SELECT
            values = service.validate_newsletter(session, data)
        return group.run(lambda session: service.write_newsletter(session, settings, values, raw, meta))  # type: ignore[no-any-return]

    await to_thread.run_sync(run)
    return Response(answer, status_code=202)


class FormController(Controller):
    path = "/api/v1/forms"
    tags = ["public"]
    middleware = [public_json_posts]
    request_max_body_size = PUBLIC_BODY_LIMIT

    @post("/newsletter", status_code=202)
    async def newsletter(self, request: Request[Any, Any, Any], data: NewsletterForm) -> Response[Accepted]:
        return await _accept_newsletter(request, data.model_dump())

    @post("/volunteer-interest", status_code=202)
    async def volunteer_interest(self, request: Request[Any, Any, Any], data: VolunteerForm) -> Response[Accepted]:
        return await _accept(request, service.submit_volunteer, data.model_dump(), "received")

    @post("/donation-inquiry", status_code=202)
    async def donation_inquiry(self, request: Request[Any, Any, Any], data: DonationForm) -> Response[Accepted]:
        return await _accept(request, service.submit_donation, data.model_dump(), "received")
