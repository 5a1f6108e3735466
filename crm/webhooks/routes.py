"""Staff API: outgoing webhook endpoints and their delivery log (admins only, every verb)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from crm.http import db, decode_id_cursor, encode_cursor, page, requires_admin, settings_of
from crm.webhooks import service


class WebhookEndpointController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    guards = [requires_admin]

    @get("/endpoints", sync_to_thread=True)
    def list_endpoints(self, request: Request[Any, Any, Any], cursor: str | None = None,
                       limit: int = Parameter(default=50, ge=1, le=500)) -> dict[str, Any]:
        with db(request) as session:
            rows, more = service.search(session, decode_id_cursor(cursor), limit)
            return page([service.endpoint_dict(e) for e in rows], encode_cursor(rows[-1].id) if more and rows else None)

    @post("/endpoints", sync_to_thread=True)
    def create_endpoint(self, request: Request[Any, Any, Any], data: dict[str, Any]) -> dict[str, Any]:
        with db(request) as session:
            ep, secret = service.create(session, settings_of(request), data)
            return {**service.endpoint_dict(ep), "secret": secret}

    @get("/endpoints/{endpoint_id:int}", sync_to_thread=True)
    def get_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int) -> dict[str, Any]:
        with db(request) as session:
            return service.endpoint_dict(service.get(session, endpoint_id))

    @patch("/endpoints/{endpoint_id:int}", sync_to_thread=True)
    def patch_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with db(request) as session:
            return service.endpoint_dict(service.patch(session, settings_of(request), endpoint_id, data))

    @delete("/endpoints/{endpoint_id:int}", sync_to_thread=True)
    def delete_endpoint(self, request: Request[Any, Any, Any], endpoint_id: int) -> None:
        with db(request) as session:
            service.delete(session, endpoint_id)

    @post("/endpoints/{endpoint_id:int}/rotate-secret", sync_to_thread=True)
    def rotate_secret(self, request: Request[Any, Any, Any], endpoint_id: int) -> dict[str, Any]:
        with db(request) as session:
            ep, secret = service.rotate_secret(session, endpoint_id)
            return {**service.endpoint_dict(ep), "secret": secret}

    @post("/endpoints/{endpoint_id:int}/test", sync_to_thread=True, status_code=202)
    def send_test(self, request: Request[Any, Any, Any], endpoint_id: int) -> dict[str, Any]:
        with db(request) as session:
            d = service.send_test(session, endpoint_id)
            return {"delivery_id": d.id, "webhook_id": d.webhook_id, "type": d.type}

    @get("/endpoints/{endpoint_id:int}/deliveries", sync_to_thread=True)
    def list_deliveries(self, request: Request[Any, Any, Any], endpoint_id: int, cursor: str | None = None,
                        limit: int = Parameter(default=50, ge=1, le=500)) -> dict[str, Any]:
        with db(request) as session:
            rows, more = service.deliveries(session, endpoint_id, decode_id_cursor(cursor), limit)
            return page(rows, encode_cursor(rows[-1]["id"]) if more and rows else None)

    @post("/deliveries/{delivery_id:int}/replay", sync_to_thread=True, status_code=202)
    def replay(self, request: Request[Any, Any, Any], delivery_id: int) -> dict[str, Any]:
        with db(request) as session:
            d = service.replay(session, delivery_id)
            return {"delivery_id": d.id, "webhook_id": d.webhook_id, "state": d.state}
