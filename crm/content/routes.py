"""Staff API: content items for digests."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from crm.content import service
from crm.content.schemas import (
    ContentItemCreate,
    ContentItemPatch,
    ContentItemPublic,
    ContentPage,
    item_public,
    items_public,
)
from crm.http import db, decode_id_cursor, encode_cursor, requires_editor, requires_viewer


class ContentController(Controller):
    path = "/api/v1/content"
    tags = ["content"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_items(self, request: Request[Any, Any, Any], topic: str | None = None, language: str | None = None,
                   cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)) -> ContentPage:
        after = decode_id_cursor(cursor)
        with db(request) as session:
            rows, more = service.list_items(session, topic, language, after, limit)
            return ContentPage(items_public(session, rows), encode_cursor(rows[-1].id) if more else None)

    @post("/", guards=[requires_editor], sync_to_thread=True)
    def create_item(self, request: Request[Any, Any, Any], data: ContentItemCreate) -> ContentItemPublic:
        with db(request) as session:
            return item_public(session, service.create_item(session, data))

    @get("/{item_id:int}", sync_to_thread=True)
    def get_item(self, request: Request[Any, Any, Any], item_id: int) -> ContentItemPublic:
        with db(request) as session:
            return item_public(session, service.get_item(session, item_id))

    @patch("/{item_id:int}", guards=[requires_editor], sync_to_thread=True)
    def update_item(self, request: Request[Any, Any, Any], item_id: int,
                    data: ContentItemPatch) -> ContentItemPublic:
        with db(request) as session:
            return item_public(session, service.update_item(session, item_id, data))

    @delete("/{item_id:int}", guards=[requires_editor], sync_to_thread=True)
    def delete_item(self, request: Request[Any, Any, Any], item_id: int) -> None:
        with db(request) as session:
            service.delete_item(session, item_id)
