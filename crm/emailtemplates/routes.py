"""Staff API: email templates (database versions over the file defaults), and their preview."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put

from crm.bodies import shaped
from crm.emailtemplates import service
from crm.emailtemplates.schemas import (
    TemplateCreate,
    TemplateList,
    TemplatePreview,
    TemplatePreviewRequest,
    TemplatePublic,
    TemplateReplace,
)
from crm.http import current_staff, db, page, requires_editor, requires_viewer, settings_of
from crm.staff.service import audit


class TemplateController(Controller):
    path = "/api/v1/templates"
    tags = ["templates"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_templates(self, request: Request[Any, Any, Any]) -> TemplateList:
        with db(request) as session:
            return shaped(TemplateList, page(service.list_all(session, settings_of(request)), None))

    @post("/", guards=[requires_editor], sync_to_thread=True)
    def create_template(self, request: Request[Any, Any, Any], data: TemplateCreate) -> TemplatePublic:
        with db(request) as session:
            row = service.save(session, settings_of(request), data, current_staff(request).email, create_only=True)
            return shaped(TemplatePublic, service.template_dict(row))

    @get("/{key:str}", sync_to_thread=True)
    def get_template(self, request: Request[Any, Any, Any], key: str, language: str = "en") -> TemplatePublic:
        with db(request) as session:
            return shaped(TemplatePublic, service.get(session, settings_of(request), key, language))

    @put("/{key:str}", guards=[requires_editor], sync_to_thread=True)
    def put_template(self, request: Request[Any, Any, Any], key: str, data: TemplateReplace) -> TemplatePublic:
        with db(request) as session:
            row = service.save(session, settings_of(request), data, current_staff(request).email, key)
            return shaped(TemplatePublic, service.template_dict(row))

    @post("/{key:str}/preview", status_code=200, sync_to_thread=True)
    def preview(self, request: Request[Any, Any, Any], key: str, data: TemplatePreviewRequest | None = None
                ) -> TemplatePreview:
        """Render with `{contact_id?}` or a sample person; reading only, so viewers may."""
        with db(request) as session:
            out = service.preview(session, settings_of(request), key, data)
            contact_id = data.contact_id if data is not None else None
            if contact_id is not None:
                # A named person's rendered email is a look at their data, audited like every preview.
                audit(session, current_staff(request).email, "template.preview", f"contact:{contact_id}",
                      rows=1, detail={"template": key})
            return shaped(TemplatePreview, out)
