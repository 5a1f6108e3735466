"""The website's three public forms and the interest taxonomy."""

from __future__ import annotations

from typing import Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post

from crm.contacts import service as contacts
from crm.forms import service
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


class FormController(Controller):
    path = "/api/v1/forms"
    tags = ["public"]
    middleware = [public_json_posts]
    request_max_body_size = PUBLIC_BODY_LIMIT

    @post("/newsletter", status_code=202)
    async def newsletter(self, request: Request[Any, Any, Any], data: NewsletterForm) -> Response[Accepted]:
        return await _accept(request, service.submit_newsletter, data.model_dump(), "pending_confirmation")

    @post("/volunteer-interest", status_code=202)
    async def volunteer_interest(self, request: Request[Any, Any, Any], data: VolunteerForm) -> Response[Accepted]:
        return await _accept(request, service.submit_volunteer, data.model_dump(), "received")

    @post("/donation-inquiry", status_code=202)
    async def donation_inquiry(self, request: Request[Any, Any, Any], data: DonationForm) -> Response[Accepted]:
        return await _accept(request, service.submit_donation, data.model_dump(), "received")
