"""Staff API: contacts, their import and export, erasure and data-subject access.

Writes need editors. Exports are reads, so viewers may take them (the contract makes viewers
"read only", not "read some"); every export is written to the audit log with its row count.
"""

from __future__ import annotations

import io
from typing import IO, Any

import anyio
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from crm import queue
from crm.bodies import present, shaped
from crm.contacts import importer, staff_service
from crm.contacts.models import ContactStatus, Role
from crm.contacts.schemas import (
    ContactCreate,
    ContactPage,
    ContactPatch,
    ContactPublic,
    DataSubjectExport,
    ImportStarted,
    contact_public,
    contacts_public,
)
from crm.contacts.search import ContactFilters, search
from crm.errors import Invalid
from crm.http import (
    check_choice,
    current_staff,
    db,
    decode_id_cursor,
    encode_cursor,
    requires_editor,
    requires_viewer,
)
from crm.jobs import service as jobs

MAX_IMPORT_BYTES = 256 * 1024 * 1024


def _explain_create(session: Any, _settings: Any, raw: dict[str, Any], *_: Any) -> None:
    staff_service.parse(session, raw, partial=False)


def _explain_patch(session: Any, _settings: Any, raw: dict[str, Any], *_: Any) -> None:
    staff_service.parse(session, raw, partial=True)


async def _import_source(request: Request[Any, Any, Any]) -> tuple[IO[bytes], str]:
    """The posted CSV and a file name for the job, from either way of sending it."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid.field("file", "a CSV file is required in the multipart field `file`")
        return upload.file, upload.filename or "upload.csv"
    if content_type.startswith(("text/csv", "text/plain", "application/csv")):
        return io.BytesIO(await request.body()), "upload.csv"
    raise Invalid.field("file", "send the CSV as multipart/form-data field `file` or as a text/csv body")


def _store_import(request: Request[Any, Any, Any], source: IO[bytes], filename: str, staff_email: str) -> int:
    """A queued import job for the file; the worker is woken when the job commits."""
    with db(request) as session:
        job = jobs.create_job(session, importer.KIND, source, filename, staff_email)
        assert job.id is not None
        queue.publish(session, queue.IMPORT_CONTACTS, job.id)
        return job.id


class ContactController(Controller):
    path = "/api/v1/contacts"
    tags = ["contacts"]
    guards = [requires_viewer]

    @get("/", sync_to_thread=True)
    def list_contacts(
        self,
        request: Request[Any, Any, Any],
        q: str | None = None,
        interest: str | None = None,
        status: str | None = None,
        role: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> ContactPage:
        check_choice("status", status, [s.value for s in ContactStatus])
        check_choice("role", role, [r.value for r in Role])
        after = decode_id_cursor(cursor)
        with db(request) as session:
            rows, more = search(session, ContactFilters(q, interest, status, role, tag), after, limit)
            items = contacts_public(session, rows)
        return ContactPage(items, encode_cursor(rows[-1].id) if more and rows else None)

    @post("/", guards=[requires_editor], sync_to_thread=True, opt={"explain": _explain_create})
    def create_contact(self, request: Request[Any, Any, Any], data: ContactCreate) -> ContactPublic:
        with db(request) as session:
            return contact_public(session, staff_service.create(session, present(data), current_staff(request).email))

    @get("/{contact_id:int}", sync_to_thread=True)
    def get_contact(self, request: Request[Any, Any, Any], contact_id: int) -> ContactPublic:
        with db(request) as session:
            return contact_public(session, staff_service.get_contact(session, contact_id))

    @patch("/{contact_id:int}", guards=[requires_editor], sync_to_thread=True, opt={"explain": _explain_patch})
    def patch_contact(self, request: Request[Any, Any, Any], contact_id: int, data: ContactPatch) -> ContactPublic:
        with db(request) as session:
            contact = staff_service.patch(session, contact_id, present(data), current_staff(request).email)
            return contact_public(session, contact)

    # Erasure and export span every domain: `privacy` is crm.privacy.service, provided by the app
    # (contacts stands below the domains it would have to import).
    @delete("/{contact_id:int}", guards=[requires_editor], sync_to_thread=True)
    def erase_contact(self, request: Request[Any, Any, Any], contact_id: int, privacy: Any) -> None:
        """Erase: personal data removed everywhere, suppression hash kept, consent trail anonymised."""
        with db(request) as session:
            privacy.erase(session, contact_id, current_staff(request).email)

    @get("/{contact_id:int}/export", sync_to_thread=True)
    def export_contact(self, request: Request[Any, Any, Any], contact_id: int, privacy: Any) -> DataSubjectExport:
        """Everything held about one person (data-subject access); audited."""
        with db(request) as session:
            return shaped(DataSubjectExport, privacy.export(session, contact_id, current_staff(request).email))

    @post("/import", guards=[requires_editor], status_code=202, request_max_body_size=MAX_IMPORT_BYTES)
    async def import_contacts(self, request: Request[Any, Any, Any]) -> ImportStarted:
        """A CSV as multipart field `file` or a raw text/csv body; returns `{"job_id"}`, progress at /api/v1/jobs/{id}."""
        staff = current_staff(request)
        source, filename = await _import_source(request)
        job_id = await anyio.to_thread.run_sync(_store_import, request, source, filename, staff.email)
        return ImportStarted(job_id=job_id)
