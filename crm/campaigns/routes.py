"""Staff API for campaigns, the bounce webhook, and the tracking links."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter
from litestar.response import Redirect

from crm.bodies import present
from crm.campaigns import bounces, service, tracking
from crm.campaigns.schemas import ScheduleRequest, TestSendRequest
from crm.http import (
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    error_body,
    page,
    requires_editor,
    requires_viewer,
    settings_of,
)

Req = Request[Any, Any, Any]


class CampaignController(Controller):
    path = "/api/v1/campaigns"
    tags = ["campaigns"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_campaigns(self, request: Req, campaign_state: str | None = Parameter(default=None, query="state"),
                       cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)
                       ) -> dict[str, Any]:
        after = decode_id_cursor(cursor)
        with db(request) as session:
            rows, more = service.list_campaigns(session, after, limit, campaign_state)
            return page([service.as_dict(c) for c in rows], encode_cursor(rows[-1].id) if more and rows else None)

    @post("/", guards=[requires_editor], sync_to_thread=True, status_code=201)
    def create(self, request: Req, data: Any) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.create(session, settings_of(request), data, current_staff(request).email))

    @get("/{campaign_id:int}", sync_to_thread=True)
    def read(self, request: Req, campaign_id: int) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.get(session, campaign_id))

    @patch("/{campaign_id:int}", guards=[requires_editor], sync_to_thread=True)
    def change(self, request: Req, campaign_id: int, data: Any) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.change(session, settings_of(request), campaign_id, data))

    @post("/{campaign_id:int}/test", guards=[requires_editor], sync_to_thread=True, status_code=202)
    def test(self, request: Req, campaign_id: int, data: TestSendRequest) -> dict[str, Any]:
        with db(request) as session:
            return service.send_test(session, settings_of(request), campaign_id, present(data),
                                     staff_email=current_staff(request).email)

    @post("/{campaign_id:int}/schedule", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def schedule(self, request: Req, campaign_id: int, data: ScheduleRequest) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.schedule(session, campaign_id, present(data)))

    @post("/{campaign_id:int}/launch", guards=[requires_editor], sync_to_thread=True, status_code=202)
    def launch(self, request: Req, campaign_id: int) -> Response[dict[str, Any]]:
        with db(request) as session:
            campaign, _started = service.launch(session, settings_of(request), campaign_id)
        return Response(service.as_dict(campaign), status_code=202)

    @post("/{campaign_id:int}/pause", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def pause(self, request: Req, campaign_id: int) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.pause(session, campaign_id))

    @post("/{campaign_id:int}/resume", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def resume(self, request: Req, campaign_id: int) -> Response[dict[str, Any]]:
        with db(request) as session:
            campaign, _resumed = service.resume(session, campaign_id)
        return Response(service.as_dict(campaign))

    @post("/{campaign_id:int}/cancel", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def cancel(self, request: Req, campaign_id: int) -> dict[str, Any]:
        with db(request) as session:
            return service.as_dict(service.cancel(session, campaign_id))

    @get("/{campaign_id:int}/stats", sync_to_thread=True)
    def stats(self, request: Req, campaign_id: int) -> dict[str, Any]:
        with db(request) as session:
            return service.stats(session, campaign_id)


class BounceWebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @post("/bounces", sync_to_thread=True, status_code=200)
    def bounces(self, request: Req, data: Any) -> Response[dict[str, Any]]:
        if not bounces.authentic(settings_of(request), request.headers.get("x-crm-webhook-secret")):
            return Response(error_body(401, "missing or wrong X-CRM-Webhook-Secret header"), status_code=401)
        with db(request) as session:
            return Response(bounces.apply(session, settings_of(request), data))


class TrackingController(Controller):
    path = "/track"
    tags = ["tracking"]
    include_in_schema = False

    @get("/open/{token:str}", sync_to_thread=True)
    def open_pixel(self, request: Req, token: str) -> Response[bytes]:
        with db(request) as session:
            tracking.opened(session, settings_of(request), token)
        return Response(tracking.PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})

    @get("/click/{token:str}", sync_to_thread=True)
    def click(self, request: Req, token: str) -> Response[Any]:
        with db(request) as session:
            target = tracking.clicked(session, settings_of(request), token)
        if target is None:
            return Response(error_body(400, "this link is not valid"), status_code=400)
        return Redirect(path=target, status_code=302)
