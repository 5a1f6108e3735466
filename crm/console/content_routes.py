"""The Content section: content items (what digests are made of) and email templates with preview.

Templates live under /staff/content/templates (SPEC names no navigation link of their own). The
template editor previews what is in the form, not what is saved, as the sample person or a
contact found by search; every sandbox error is shown beside the field it is in.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect
from sqlmodel import Session

from crm.console import content_view as view
from crm.console.web import (
    PAGE_SIZE,
    ConsoleSection,
    Form,
    can,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.content import service as content
from crm.content.schemas import item_public
from crm.db import session_scope
from crm.emailtemplates import service as templates
from crm.errors import Conflict, Invalid, NotFound
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.staff.models import StaffRole
from crm.staff.service import audit

BASE = "/staff/content"
TEMPLATES = f"{BASE}/templates"


def _item_page(request: Request[Any, Any, Any], session: Session, item_id: int | None, values: dict[str, Any],
               errors: dict[str, str] | None = None, status_code: int = 200) -> Response[str]:
    title = f"Content item {values['title']}" if item_id else "New content item"
    return page(request, "content/item.html", status_code=status_code, title=title, item_id=item_id, v=values,
                errors=errors or {}, interests=view.interest_labels(session), languages=view.LANGUAGES,
                saved=request.query_params.get("saved") == "1")


class ContentPages(ConsoleSection):
    @get("/content", guards=[console_viewer], sync_to_thread=True)
    def item_list(self, request: Request[Any, Any, Any], after: str | None = None) -> Response[str]:
        try:
            after_id = decode_id_cursor(after)
        except Invalid:  # a mangled paging link starts from the top
            after_id = None
        with session_scope(settings_of(request)) as session:
            rows, more = content.list_items(session, None, None, after_id, PAGE_SIZE)
            items = [item_public(session, r) for r in rows]
            return page(request, "content/list.html", title="Content", items=items,
                        labels=view.interest_labels(session), languages=view.LANGUAGES, day=view.day,
                        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
                        deleted=request.query_params.get("deleted") == "1")

    @get("/content/new", guards=[console_editor], sync_to_thread=True)
    def new_item(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            return _item_page(request, session, None, view.item_form(None, []))

    @post("/content/new", guards=[console_editor], sync_to_thread=True)
    def create_item(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        return _save_item(request, data, None)

    @get("/content/{item_id:int}", guards=[console_viewer], sync_to_thread=True)
    def open_item(self, request: Request[Any, Any, Any], item_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            item = content.get_item(session, item_id)
            return _item_page(request, session, item_id, view.item_form(item, content.topics_of(session, item_id)))

    @post("/content/{item_id:int}", guards=[console_editor], sync_to_thread=True)
    def update_item(self, request: Request[Any, Any, Any], item_id: int, data: Form) -> Response[Any]:
        return _save_item(request, data, item_id)

    @get("/content/{item_id:int}/delete", guards=[console_editor], sync_to_thread=True)
    def confirm_delete(self, request: Request[Any, Any, Any], item_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            item = content.get_item(session, item_id)
            return page(request, "content/delete.html", title=f"Delete {item.title}", what=item.title,
                        action=f"{BASE}/{item_id}/delete", back=f"{BASE}/{item_id}", button="Delete content item",
                        note="Digests already sent keep their record; the item is not offered again.")

    @post("/content/{item_id:int}/delete", guards=[console_editor], sync_to_thread=True)
    def delete_item(self, request: Request[Any, Any, Any], item_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        with session_scope(settings_of(request)) as session:
            content.delete_item(session, item_id)
        return Redirect(f"{BASE}?deleted=1", status_code=303)


def _save_item(request: Request[Any, Any, Any], data: dict[str, str], item_id: int | None) -> Response[Any]:
    check_csrf(request, data)
    with session_scope(settings_of(request)) as session:
        item = content.get_item(session, item_id) if item_id else None
        fields = view.item_fields(session, data, item)
        try:
            with session.begin_nested():
                saved = content.update_item(session, item_id, fields) if item_id else content.create_item(session, fields)
        except Invalid as exc:
            return _item_page(request, session, item_id, view.posted_item_form(data), exc.fields or
                              {"title": exc.message}, status_code=400)
        return Redirect(f"{BASE}/{saved.id}?saved=1", status_code=303)


# --- templates ------------------------------------------------------------------------------------


def _template_page(request: Request[Any, Any, Any], session: Session, key: str | None, values: dict[str, Any], *,
                   errors: dict[str, str] | None = None, preview: dict[str, str] | None = None,
                   found: list[Any] | None = None, status_code: int = 200) -> Response[str]:
    settings = settings_of(request)
    title = f"Template {key}" if key else "New template"
    found = found or view.chosen_contact(session, str(values.get("preview_contact") or ""))
    return page(request, "content/template.html", status_code=status_code, title=title, key=key, v=values,
                errors=errors or {}, preview=preview, found=found, languages=view.LANGUAGES,
                built_in=bool(key and templates.has_file_default(settings, key)),
                used_by=view.campaigns_using(session, key) if key else [],
                saved=request.query_params.get("saved") == "1")


def _template_values(form: dict[str, str], key: str | None) -> dict[str, Any]:
    return {"key": key if key is not None else form.get("key", "").strip(), "language": form.get("language", "en"),
            "subject": form.get("subject", ""), "body_html": form.get("body_html", ""),
            "body_text": form.get("body_text", ""), "source": form.get("source", "database"),
            "preview_q": form.get("preview_q", ""), "preview_contact": form.get("preview_contact", "")}


def _preview_contact(values: dict[str, Any]) -> int | None:
    raw = str(values.get("preview_contact") or "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _template_submit(request: Request[Any, Any, Any], data: dict[str, str], key: str | None) -> Response[Any]:
    check_csrf(request, data)
    values = _template_values(data, key)
    action = data.get("action", "preview")
    if action == "save" and not can(request, StaffRole.editor):
        raise PermissionDeniedException("saving a template needs the editor role")
    settings = settings_of(request)
    with session_scope(settings) as session:
        if action == "find":
            return _template_page(request, session, key, values, found=view.find_contacts(session, values["preview_q"]))
        if key is None and values["key"] == "new":  # /staff/content/templates/new is the create form
            return _template_page(request, session, key, values, errors={"key": "is reserved; choose another name"},
                                  status_code=400)
        contact_id = _preview_contact(values)
        try:
            with session.begin_nested():
                shown = templates.render_sources(session, settings, values, contact_id)
                if action == "save":
                    row = templates.save(session, settings, {k: values[k] for k in (
                        "key", "language", "subject", "body_html", "body_text")}, staff_email(request), key,
                        create_only=key is None)
                    return Redirect(f"{TEMPLATES}/{row.key}?language={row.language}&saved=1", status_code=303)
        except (Invalid, Conflict, NotFound) as exc:
            errors = dict(exc.fields) or {"preview_contact": exc.message}
            if "template" in errors:
                errors.setdefault("body_html", errors.pop("template"))
            return _template_page(request, session, key, values, errors=errors,
                                  status_code=409 if isinstance(exc, Conflict) else 400)
        if contact_id is not None:
            # A named person's rendered email is a look at their data, audited as the API's preview is.
            audit(session, staff_email(request), "template.preview", f"contact:{contact_id}", rows=1,
                  detail={"template": values["key"]})
        return _template_page(request, session, key, values, preview=shown)


class TemplatePages(ConsoleSection):
    @get("/content/templates", guards=[console_viewer], sync_to_thread=True)
    def template_list(self, request: Request[Any, Any, Any]) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            rows = templates.list_all(session, settings_of(request))
            return page(request, "content/templates.html", title="Email templates", rows=rows,
                        languages=view.LANGUAGES, day=view.day, deleted=request.query_params.get("deleted") == "1")

    @get("/content/templates/new", guards=[console_editor], sync_to_thread=True)
    def new_template(self, request: Request[Any, Any, Any]) -> Response[str]:
        values = _template_values({"subject": "{{ campaign.subject }}", "body_html": STARTER_HTML,
                                   "body_text": STARTER_TEXT}, None)
        with session_scope(settings_of(request)) as session:
            return _template_page(request, session, None, values)

    @post("/content/templates/new", guards=[console_viewer], sync_to_thread=True)
    def create_template(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        return _template_submit(request, data, None)

    @get("/content/templates/{key:str}", guards=[console_viewer], sync_to_thread=True)
    def open_template(self, request: Request[Any, Any, Any], key: str, language: str = "en") -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            found = templates.sources_in(session, settings, key, language if language in view.LANGUAGES else "en")
            values = _template_values({k: found[k] or "" for k in ("subject", "body_html", "body_text")}, key)
            values.update(language=language if language in view.LANGUAGES else "en", source=found["source"])
            return _template_page(request, session, key, values)

    @post("/content/templates/{key:str}", guards=[console_viewer], sync_to_thread=True)
    def save_template(self, request: Request[Any, Any, Any], key: str, data: Form) -> Response[Any]:
        return _template_submit(request, data, key)

    @get("/content/templates/{key:str}/delete", guards=[console_editor], sync_to_thread=True)
    def confirm_template_delete(self, request: Request[Any, Any, Any], key: str, language: str = "en") -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            built_in = templates.has_file_default(settings, key)
            return page(request, "content/delete.html", title=f"Delete template {key}", what=f"{key} ({language})",
                        action=f"{TEMPLATES}/{key}/delete?language={language}",
                        back=f"{TEMPLATES}/{key}?language={language}",
                        button="Revert to built-in" if built_in else "Delete template",
                        note=("The built-in version is used again." if built_in else "This cannot be undone."),
                        used_by=[] if built_in else view.campaigns_using(session, key))

    @post("/content/templates/{key:str}/delete", guards=[console_editor], sync_to_thread=True)
    def delete_template(self, request: Request[Any, Any, Any], key: str, data: Form, language: str = "en"
                        ) -> Response[Any]:
        check_csrf(request, data)
        settings = settings_of(request)
        with session_scope(settings) as session:
            used = [] if templates.has_file_default(settings, key) else view.campaigns_using(session, key)
            if used:
                return page(request, "content/delete.html", status_code=409, title=f"Delete template {key}",
                            what=f"{key} ({language})", action="", back=f"{TEMPLATES}/{key}?language={language}",
                            button="", note="", used_by=used, refused=True)
            templates.delete(session, key, language)
        return Redirect(f"{TEMPLATES}?deleted=1", status_code=303)


STARTER_HTML = """{% extends "_layout.html" %}
{% block content %}
<p>Hello {{ contact.first_name or "friend" }},</p>
{{ body_html }}
{% endblock %}
{% block footer %}
<p><a href="{{ links.preferences }}">Manage your preferences</a> &middot; <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
{{ super() }}
{% endblock %}
"""
STARTER_TEXT = """{% extends "_layout.txt" %}
{% block content %}
Hello {{ contact.first_name or "friend" }},

{{ body_text }}
{% endblock %}
{% block footer %}
Manage your preferences: {{ links.preferences }}
Unsubscribe: {{ links.unsubscribe }}
{{ super() }}
{% endblock %}
"""
