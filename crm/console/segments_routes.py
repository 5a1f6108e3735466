"""Segments in the console: the saved list with counts, the rule builder with a live count, save, delete.

The builder is one form. Without JavaScript its buttons submit it (Count, Add, Remove, Save) and the
page comes back with the count; segments.js posts the same form to the two fragment endpoints:

- POST /staff/segments/count: the form (or `rules` as JSON) -> the count panel (role=status)
  and the sample. GET /staff/segments/count?rules=<JSON>&list=<list key> answers the same for
  scripts and the benchmark (bench/console.py). One compiled count, one sample page, one count
  through the list's mailing gate; audited like the API's preview, since it shows people.
- POST /staff/segments/builder: the form plus an Add/Remove action -> the builder redrawn.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter
from litestar.response import Redirect
from sqlmodel import Session

from crm.console import segment_builder as builder
from crm.console import segments_view as view
from crm.console.render import render
from crm.console.web import (
    HEADERS,
    ConsoleSection,
    Form,
    can,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.db import session_scope
from crm.errors import Conflict, Invalid
from crm.http import settings_of
from crm.segments import service as segments
from crm.staff.models import StaffRole

BASE = "/staff/segments"


def _target(data: dict[str, str]) -> str:
    raw = data.get("segment", "")
    return f"segment:{raw}" if raw.isdigit() else "segment:unsaved"


def _fragment(template: str, status_code: int = 200, **context: Any) -> Response[str]:
    return Response(render(template, {**_choices(context.pop("session")), **context}), status_code=status_code,
                    media_type="text/html", headers=HEADERS)


def _choices(session: Session, root: builder.Node | None = None) -> dict[str, Any]:
    return {"B": builder, "interests": view.interest_choices(session, root)}


def _panel(session: Session, request: Request[Any, Any, Any], root: builder.Node, list_key: str,
           target: str) -> tuple[view.CountPanel, dict[str, Any]]:
    rules, unfinished = builder.to_rules(root)
    return view.count_panel(session, rules, list_key, staff_email=staff_email(request), target=target,
                            unfinished=len(unfinished)), rules


def _builder_page(request: Request[Any, Any, Any], session: Session, root: builder.Node, form: dict[str, str], *,
                  segment_id: int | None, status_code: int = 200, errors: dict[str, str] | None = None,
                  focus: str | None = None) -> Response[str]:
    list_key = view.chosen_list(form.get("list"))
    panel, _ = _panel(session, request, root, list_key, f"segment:{segment_id}" if segment_id else "segment:unsaved")
    seg = segments.get_segment(session, segment_id) if segment_id else None
    title = f"Segment {seg.name}" if seg else "Build a segment"
    return page(request, "segments/builder.html", status_code=status_code, title=title, segment=seg, root=root,
                panel=panel, name=form.get("name", seg.name if seg else ""),
                description=form.get("description", seg.description if seg else ""), errors=errors or {},
                focus=focus, used_by=view.used_by(session, segment_id) if segment_id else [],
                saved=request.query_params.get("saved") == "1", **_choices(session, root))


def _save(request: Request[Any, Any, Any], session: Session, root: builder.Node, data: dict[str, str],
          segment_id: int | None) -> Response[Any]:
    if not can(request, StaffRole.editor):
        raise PermissionDeniedException("saving a segment needs the editor role")
    rules, unfinished = builder.to_rules(root)
    if unfinished:
        return _builder_page(request, session, root, data, segment_id=segment_id, status_code=400,
                             errors={"rules": "Finish or remove the rules marked below before saving."})
    fields = {"name": data.get("name", ""), "description": data.get("description", ""), "rules": rules}
    try:
        with session.begin_nested():
            if segment_id is None:
                seg = segments.create_segment(session, fields, staff_email(request))
            else:
                seg = segments.update_segment(session, segment_id, fields)
    except (Invalid, Conflict) as exc:
        errors = dict(exc.fields) or {"rules": exc.message}
        return _builder_page(request, session, root, data, segment_id=segment_id,
                             status_code=409 if isinstance(exc, Conflict) else 400, errors=errors)
    return Redirect(f"{BASE}/{seg.id}?saved=1", status_code=303)


def _submit(request: Request[Any, Any, Any], data: dict[str, str], segment_id: int | None) -> Response[Any]:
    check_csrf(request, data)
    root = builder.from_form(data)
    action = data.get("action", "count")
    with session_scope(settings_of(request)) as session:
        if segment_id is not None:
            segments.get_segment(session, segment_id)  # a 404 page for a segment deleted meanwhile
        if action == "save":
            return _save(request, session, root, data, segment_id)
        focus = builder.apply(root, action, data)
        return _builder_page(request, session, root, data, segment_id=segment_id, focus=focus)


class SegmentPages(ConsoleSection):
    @get("/segments", guards=[console_viewer], sync_to_thread=True)
    def segment_list(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            rows = view.listing(session)
            return page(request, "segments/list.html", title="Segments", rows=rows,
                        deleted=request.query_params.get("deleted") == "1")

    @get("/segments/new", guards=[console_viewer], sync_to_thread=True)
    def new_segment(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            return _builder_page(request, session, builder.empty(), {}, segment_id=None)

    @post("/segments/new", guards=[console_viewer], sync_to_thread=True)
    def new_segment_submit(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        return _submit(request, data, None)

    @get("/segments/{segment_id:int}", guards=[console_viewer], sync_to_thread=True)
    def open_segment(self, request: Request[Any, Any, Any], segment_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            seg = segments.get_segment(session, segment_id)
            return _builder_page(request, session, builder.from_rules(seg.rules), {}, segment_id=segment_id)

    @post("/segments/{segment_id:int}", guards=[console_viewer], sync_to_thread=True)
    def segment_submit(self, request: Request[Any, Any, Any], segment_id: int, data: Form) -> Response[Any]:
        return _submit(request, data, segment_id)

    @get("/segments/{segment_id:int}/delete", guards=[console_editor], sync_to_thread=True)
    def confirm_delete(self, request: Request[Any, Any, Any], segment_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            seg = segments.get_segment(session, segment_id)
            return page(request, "segments/delete.html", title=f"Delete segment {seg.name}", segment=seg,
                        used_by=view.used_by(session, segment_id))

    @post("/segments/{segment_id:int}/delete", guards=[console_editor], sync_to_thread=True)
    def delete_segment(self, request: Request[Any, Any, Any], segment_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            seg = segments.get_segment(session, segment_id)
            name, used = seg.name, view.used_by(session, segment_id)
            try:
                if used:
                    raise Conflict("used by a campaign")
                segments.delete_segment(session, segment_id)
            except Conflict:
                return page(request, "segments/delete.html", status_code=409, title=f"Delete segment {name}",
                            segment=seg, used_by=used or view.used_by(session, segment_id), refused=True)
        return Redirect(f"{BASE}?deleted=1", status_code=303)

    @post("/segments/count", guards=[console_viewer], sync_to_thread=True)
    def live_count(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        return _count_fragment(request, data)

    @get("/segments/count", guards=[console_viewer], sync_to_thread=True)
    def count_by_query(self, request: Request[Any, Any, Any], rules: str = "",
                       list_key: str | None = Parameter(query="list", default=None)) -> Response[str]:
        return _count_fragment(request, {"rules": rules or "{}", "list": list_key or ""})

    @post("/segments/builder", guards=[console_viewer], sync_to_thread=True)
    def redraw(self, request: Request[Any, Any, Any], data: Form) -> Response[str]:
        check_csrf(request, data)
        root = builder.from_form(data)
        focus = builder.apply(root, data.get("action", ""), data)
        with session_scope(settings_of(request)) as session:
            return _fragment("segments/_builder.html", session=session, root=root, focus=focus)


def _count_fragment(request: Request[Any, Any, Any], data: dict[str, str]) -> Response[str]:
    list_key = view.chosen_list(data.get("list"))
    with session_scope(settings_of(request)) as session:
        if "rules" in data:
            try:
                rules = json.loads(data["rules"])
            except ValueError:
                panel = view.CountPanel(None, None, list_key, [], 0, error="rules: not valid JSON")
                return _fragment("segments/_count.html", 400, session=session, panel=panel)
            panel = view.count_panel(session, rules if isinstance(rules, dict) else {"": rules}, list_key,
                                     staff_email=staff_email(request), target=_target(data))
        else:
            panel, _ = _panel(session, request, builder.from_form(data), list_key, _target(data))
        return _fragment("segments/_count.html", 400 if panel.error else 200, session=session, panel=panel)
