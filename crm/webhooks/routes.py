"""Staff API: outgoing webhook endpoints and their delivery log (admins only, every verb)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from crm.bodies import present, shaped
from crm.http import db, decode_id_cursor, encode_cursor, page, requires_admin, settings_of
from crm.webhooks import service
from crm.webhooks.schemas import (
    DeliveryPage,
    EndpointCreate,
    EndpointPage,
    EndpointPatch,
    EndpointPublic,
    Replay,
    TestEvent,
)


def _explain_create(session: Any, settings: Any, raw: dict[str, Any], _params: Any) -> None:
    service.create(session, settings, raw)


def _explain_patch(session: Any, settings: Any, raw: dict[str, Any], params: dict[str, Any]) -> None:
    service.patch(session, settings, params["endpoint_id"], raw)


def _public(ep: Any, secret: str | None = None) -> EndpointPublic:
    return shaped(EndpointPublic, {**service.endpoint_dict(ep), **({"secret": secret} if secret else {})})


class WebhookEndpointController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    guards = [requires_admin]

    @get("/endpoints", sync_to_thread=True)
    def list_endpoints(self, request: Request[Any, Any, Any], cursor: str | None = None,
                       limit: int = Parameter(default=50, ge=1, le=500)) -> EndpointPage:
        with db(request) as session:
            rows, more = service.search(session, decode_id_cursor(cursor), limit)
            return EndpointPage([_public(e) for e in rows], encode_cursor(rows[-1].id) if more and rows else None)

    @post("/endpoints", sync_to_thread=True, opt={"explain": _explain_create})
    def create_endpoint(self, request: Request[Any, Any, Any], data: EndpointCreate) -> EndpointPublic:
        with db(request) as session:
            ep, secret = service.create(session, settings_of(request), present(data))
            return _public(ep, secret)

    @get("/endpoints/{endpoint_id:int}", sync_to_thread=True)
    def get_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int) -> EndpointPublic:
        with db(request) as session:
            return _public(service.get(session, endpoint_id))

    @patch("/endpoints/{endpoint_id:int}", sync_to_thread=True, opt={"explain": _explain_patch})
    def patch_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int, data: EndpointPatch
                       ) -> EndpointPublic:
        with db(request) as session:
            return _public(service.patch(session, settings_of(request), endpoint_id, present(data)))

    @delete("/endpoints/{endpoint_id:int}", sync_to_thread=True)
    def delete_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int) -> None:
        with db(request) as session:
            service.delete(session, endpoint_id)

    @post("/endpoints/{endpoint_id:int}/rotate-secret", sync_to_thread=True)
    def rotate_secret(self, request: Request[Any, Any, Any], endpoint_id: int) -> EndpointPublic:
        with db(request) as session:
            ep, secret = service.rotate_secret(session, endpoint_id)
            return _public(ep, secret)

    @post("/endpoints/{endpoint_id:int}/test", sync_to_thread=True, status_code=202)
    def send_test(self, request: Request[Any, Any, Any], endpoint_id: int) -> TestEvent:
        with db(request) as session:
            d = service.send_test(session, endpoint_id)
            assert d.id is not None
            return TestEvent(delivery_id=d.id, webhook_id=d.webhook_id, type=d.type)

    @get("/endpoints/{endpoint_id:int}/deliveries", sync_to_thread=True)
    def list_deliveries(self, request: Request[Any, Any, Any], endpoint_id: int, cursor: str | None = None,
                        limit: int = Parameter(default=50, ge=1, le=500)) -> DeliveryPage:
        with db(request) as session:
            rows, more = service.deliveries(session, endpoint_id, decode_id_cursor(cursor), limit)
            return shaped(DeliveryPage, page(rows, encode_cursor(rows[-1]["id"]) if more and rows else None))

    @post("/deliveries/{delivery_id:int}/replay", sync_to_thread=True, status_code=202)
    def replay(self, request: Request[Any, Any, Any], delivery_id: int) -> Replay:
        with db(request) as session:
            d = service.replay(session, delivery_id)
            assert d.id is not None
            return Replay(delivery_id=d.id, webhook_id=d.webhook_id, state=d.state)
