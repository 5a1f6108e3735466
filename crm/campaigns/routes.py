"""Staff API for campaigns, the bounce webhook, and the tracking links."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from litestar.response import Redirect

from crm.bodies import present, shaped
from crm.campaigns import bounces, proofs, service, tracking
from crm.campaigns.models import CampaignState
from crm.campaigns.schemas import (
    BounceCounts,
    BounceReport,
    CampaignCreate,
    CampaignPage,
    CampaignPatch,
    CampaignPublic,
    CampaignStats,
    ScheduleRequest,
    TestSendRequest,
    TestSendResult,
)
from crm.http import (
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    error_body,
    requires_editor,
    requires_viewer,
    settings_of,
)

Req = Request[Any, Any, Any]


def _public(campaign: Any) -> CampaignPublic:
    return shaped(CampaignPublic, service.as_dict(campaign))


def _explain_create(session: Any, settings: Any, raw: dict[str, Any], *_: Any) -> None:
    service.parse_fields(session, settings, raw, partial=False)


def _explain_patch(session: Any, settings: Any, raw: dict[str, Any], *_: Any) -> None:
    service.parse_fields(session, settings, raw, partial=True)


class CampaignController(Controller):
    path = "/api/v1/campaigns"
    tags = ["campaigns"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_campaigns(self, request: Req,
                       campaign_state: CampaignState | None = Parameter(default=None, query="state"),
                       cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)
                       ) -> CampaignPage:
        after = decode_id_cursor(cursor)
        with db(request) as session:
            rows, more = service.list_campaigns(session, after, limit, campaign_state)
            return CampaignPage([_public(c) for c in rows], encode_cursor(rows[-1].id) if more and rows else None)

    @post("/", guards=[requires_editor], sync_to_thread=True, status_code=201, opt={"explain": _explain_create})
    def create(self, request: Req, data: CampaignCreate) -> CampaignPublic:
        with db(request) as session:
            return _public(service.create(session, settings_of(request), present(data), current_staff(request).email))

    @get("/{campaign_id:int}", sync_to_thread=True)
    def read(self, request: Req, campaign_id: int) -> CampaignPublic:
        with db(request) as session:
            return _public(service.get(session, campaign_id))

    @patch("/{campaign_id:int}", guards=[requires_editor], sync_to_thread=True, opt={"explain": _explain_patch})
    def change(self, request: Req, campaign_id: int, data: CampaignPatch) -> CampaignPublic:
        with db(request) as session:
            return _public(service.change(session, settings_of(request), campaign_id, present(data)))

    @post("/{campaign_id:int}/test", guards=[requires_editor], sync_to_thread=True, status_code=202)
    def test(self, request: Req, campaign_id: int, data: TestSendRequest) -> TestSendResult:
        with db(request) as session:
            return shaped(TestSendResult, proofs.send_test(session, settings_of(request), campaign_id, present(data),
                                                            staff_email=current_staff(request).email))

    @post("/{campaign_id:int}/schedule", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def schedule(self, request: Req, campaign_id: int, data: ScheduleRequest) -> CampaignPublic:
        with db(request) as session:
            return _public(service.schedule(session, campaign_id, present(data)))

    @post("/{campaign_id:int}/launch", guards=[requires_editor], sync_to_thread=True, status_code=202)
    def launch(self, request: Req, campaign_id: int) -> CampaignPublic:
        with db(request) as session:
            campaign, _started = service.launch(session, settings_of(request), campaign_id)
            return _public(campaign)

    @post("/{campaign_id:int}/pause", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def pause(self, request: Req, campaign_id: int) -> CampaignPublic:
        with db(request) as session:
            return _public(service.pause(session, campaign_id))

    @post("/{campaign_id:int}/resume", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def resume(self, request: Req, campaign_id: int) -> CampaignPublic:
        with db(request) as session:
            campaign, _resumed = service.resume(session, campaign_id)
            return _public(campaign)

    @post("/{campaign_id:int}/cancel", guards=[requires_editor], sync_to_thread=True, status_code=200)
    def cancel(self, request: Req, campaign_id: int) -> CampaignPublic:
        with db(request) as session:
            return _public(service.cancel(session, campaign_id))

    @get("/{campaign_id:int}/stats", sync_to_thread=True)
    def stats(self, request: Req, campaign_id: int) -> CampaignStats:
        with db(request) as session:
            return shaped(CampaignStats, service.stats(session, campaign_id))


def _provider_secret(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Before the body is read: a caller without the secret learns nothing about its shape."""
    if not bounces.authentic(settings_of(connection), connection.headers.get("x-crm-webhook-secret")):
        raise NotAuthorizedException("missing or wrong X-CRM-Webhook-Secret header")


def _explain_bounces(_session: Any, _settings: Any, raw: dict[str, Any], *_: Any) -> None:
    bounces.parse_events(raw)


class BounceWebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @post("/bounces", sync_to_thread=True, status_code=200, guards=[_provider_secret],
          opt={"explain": _explain_bounces})
    def bounces(self, request: Req, data: BounceReport) -> BounceCounts:
        with db(request) as session:
            return shaped(BounceCounts, bounces.apply(session, settings_of(request), msgspec.to_builtins(data)))


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
