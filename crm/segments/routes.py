"""Staff API: saved segments, their counts and previews."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import Parameter
from litestar.response import Stream

from crm.http import (
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    requires_editor,
    requires_viewer,
    settings_of,
)
from crm.segments import export, service
from crm.segments.schemas import (
    SegmentCreate,
    SegmentPage,
    SegmentPreview,
    SegmentPreviewRequest,
    SegmentPublic,
    SegmentUpdate,
    segment_public,
)


class SegmentController(Controller):
    path = "/api/v1/segments"
    tags = ["segments"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_segments(self, request: Request[Any, Any, Any], cursor: str | None = None,
                      limit: int = Parameter(default=50, ge=1, le=500)) -> SegmentPage:
        with db(request) as session:
            rows, more = service.list_segments(session, decode_id_cursor(cursor), limit)
            return SegmentPage([segment_public(s) for s in rows], encode_cursor(rows[-1].id) if more else None)

    @post("/", guards=[requires_editor], sync_to_thread=True)
    def create_segment(self, request: Request[Any, Any, Any], data: SegmentCreate) -> SegmentPublic:
        with db(request) as session:
            return segment_public(service.create_segment(session, data, current_staff(request).email))

    @post("/preview", status_code=200, sync_to_thread=True)
    def preview(self, request: Request[Any, Any, Any], data: SegmentPreviewRequest,
                list_key: str | None = Parameter(query="list", default=None)) -> SegmentPreview:
        """An unsaved rule tree: `{"rules": {...}, "list"?: key}`; reading only, so viewers may."""
        with db(request) as session:
            return SegmentPreview(**service.preview_unsaved(session, data, list_key, current_staff(request).email))

    @get("/{segment_id:int}", sync_to_thread=True)
    def get_segment(self, request: Request[Any, Any, Any], segment_id: int) -> SegmentPublic:
        with db(request) as session:
            return segment_public(service.get_segment(session, segment_id))

    @put("/{segment_id:int}", guards=[requires_editor], sync_to_thread=True)
    def update_segment(self, request: Request[Any, Any, Any], segment_id: int,
                       data: SegmentUpdate) -> SegmentPublic:
        with db(request) as session:
            return segment_public(service.update_segment(session, segment_id, data))

    @delete("/{segment_id:int}", guards=[requires_editor], sync_to_thread=True)
    def delete_segment(self, request: Request[Any, Any, Any], segment_id: int) -> None:
        with db(request) as session:
            service.delete_segment(session, segment_id)

    @get("/{segment_id:int}/count", sync_to_thread=True)
    def count(self, request: Request[Any, Any, Any], segment_id: int,
              list_key: str | None = Parameter(query="list", default=None)) -> SegmentPreview:
        with db(request) as session:
            seg = service.get_segment(session, segment_id)
            found = service.preview(session, seg.rules, list_key, staff_email=current_staff(request).email,
                                    target=f"segment:{segment_id}")
        return SegmentPreview(**found)


class ContactExportController(Controller):
    """GET /api/v1/contacts/export.csv: with the segments, since it exports a segment's members."""

    path = "/api/v1/contacts"
    tags = ["contacts"]
    guards = [requires_viewer]

    @get("/export.csv", sync_to_thread=True, media_type="text/csv; charset=utf-8")
    def export_csv(self, request: Request[Any, Any, Any], segment_id: int | None = None) -> Stream:
        """Streamed CSV (keyset batches); cells a spreadsheet would run as formulas are neutralised."""
        with db(request) as session:
            audit_id = export.start(session, segment_id, current_staff(request).email)
        return Stream(export.stream(settings_of(request), segment_id, audit_id), media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": 'attachment; filename="contacts.csv"'})
