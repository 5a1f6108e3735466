"""Imports: upload a CSV, choose what unknown columns mean, watch progress live, read and download row errors."""

from __future__ import annotations

import csv
import io
from typing import Any

import anyio
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect
from sqlalchemy import select

from crm import queue
from crm.console import ops_format
from crm.console.web import (
    ConsoleSection,
    Form,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    staff_email,
)
from crm.contacts import import_columns, importer
from crm.contacts.routes import MAX_IMPORT_BYTES
from crm.db import session_scope
from crm.errors import Conflict, Invalid, NotFound
from crm.http import settings_of
from crm.jobs import service as jobs
from crm.jobs.models import Job, JobState
from crm.segments.export import neutralise

BASE = "/staff/imports"
ERRORS_SHOWN = 200  # on the page; the CSV has every kept one


def _recent(request: Request[Any, Any, Any]) -> list[Job]:
    with session_scope(settings_of(request)) as session:
        return list(session.scalars(select(Job).where(Job.kind == importer.KIND)
                                    .order_by(Job.id.desc()).limit(20)))  # type: ignore[union-attr]


def _list(request: Request[Any, Any, Any], status_code: int = 200, error: str = "") -> Response[str]:
    return page(request, "imports/list.html", status_code=status_code, title="Imports", jobs=_recent(request),
                fmt=ops_format, error=error, columns=import_columns.LABELS)


def _job_context(request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        job = jobs.get_job(session, job_id)
        if job.kind != importer.KIND:
            raise NotFound(f"no import {job_id}")
    done = job.processed
    percent = int(100 * done / job.total) if job.total else (100 if job.state == JobState.done else 0)
    return {"job": job, "percent": min(percent, 100), "live": job.state in (JobState.queued, JobState.running),
            "errors": job.errors[:ERRORS_SHOWN], "fmt": ops_format}


def _store(request: Request[Any, Any, Any], upload: UploadFile) -> int:
    with session_scope(settings_of(request)) as session:
        job = jobs.create_job(session, importer.KIND, upload.file, upload.filename or "upload.csv", staff_email(request))
        assert job.id is not None
        if import_columns.unknown(import_columns.header(session, job.id)):
            import_columns.hold(session, job)
        else:
            queue.publish(session, queue.IMPORT_CONTACTS, job.id)
        return job.id


class ImportsPages(ConsoleSection):
    @get("/imports", guards=[console_viewer], sync_to_thread=True)
    def imports(self, request: Request[Any, Any, Any]) -> Response[str]:
        return _list(request)

    @post("/imports", guards=[console_editor], request_max_body_size=MAX_IMPORT_BYTES)
    async def upload(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        check_csrf(request, {"csrf_token": str(form.get("csrf_token") or "")})
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await anyio.to_thread.run_sync(lambda: _list(request, 400, "Choose a CSV file to import."))
        try:
            job_id = await anyio.to_thread.run_sync(_store, request, upload)
        except Invalid as exc:
            message = exc.message
            return await anyio.to_thread.run_sync(lambda: _list(request, 400, message))
        return Redirect(f"{BASE}/{job_id}", status_code=303)

    @get("/imports/{job_id:int}", guards=[console_viewer], sync_to_thread=True)
    def job(self, request: Request[Any, Any, Any], job_id: int) -> Response[Any]:
        context = _job_context(request, job_id)
        if context["job"].state == JobState.waiting:
            return Redirect(f"{BASE}/{job_id}/columns", status_code=303)
        return page(request, "imports/job.html", title=f"Import {job_id}", **context)

    @get("/imports/{job_id:int}/progress", guards=[console_viewer], sync_to_thread=True)
    def progress(self, request: Request[Any, Any, Any], job_id: int) -> Response[str]:
        """The live part of the job page, polled by htmx while the import runs."""
        return page(request, "imports/_progress.html", **_job_context(request, job_id))

    @get("/imports/{job_id:int}/columns", guards=[console_viewer], sync_to_thread=True)
    def columns(self, request: Request[Any, Any, Any], job_id: int) -> Response[str]:
        return _columns_page(request, job_id)

    @post("/imports/{job_id:int}/columns", guards=[console_editor], sync_to_thread=True)
    def choose_columns(self, request: Request[Any, Any, Any], job_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        mapping = {k.removeprefix("col:"): v for k, v in data.items() if k.startswith("col:")}
        try:
            with session_scope(settings_of(request)) as session:
                import_columns.apply_mapping(session, jobs.get_job(session, job_id), mapping)
                queue.publish(session, queue.IMPORT_CONTACTS, job_id)
        except (Invalid, Conflict) as exc:
            return _columns_page(request, job_id, 400, exc.message)
        return Redirect(f"{BASE}/{job_id}", status_code=303)

    @get("/imports/{job_id:int}/errors.csv", guards=[console_viewer], sync_to_thread=True)
    def errors_csv(self, request: Request[Any, Any, Any], job_id: int) -> Response[str]:
        job = _job_context(request, job_id)["job"]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["row", "column", "problem"])
        for e in job.errors:
            writer.writerow([e.get("row", ""), neutralise(e.get("field", "")),
                             neutralise(e.get("message") or e.get("error", ""))])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="import-{job_id}-errors.csv"', "Cache-Control": "no-store"})


def _columns_page(request: Request[Any, Any, Any], job_id: int, status_code: int = 200, error: str = ""
                  ) -> Response[str]:
    with session_scope(settings_of(request)) as session:
        job = jobs.get_job(session, job_id)
        columns = import_columns.header(session, job_id) if job.state == JobState.waiting else []
    return page(request, "imports/columns.html", status_code=status_code, title=f"Import {job_id}: columns",
                job=job, unknown=import_columns.unknown(columns), choices=import_columns.choices(columns),
                labels=import_columns.LABELS, error=error, fmt=ops_format)
