"""Staff API: background jobs (progress and per-row errors)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from crm.http import db, requires_viewer
from crm.jobs import service
from crm.jobs.schemas import JobPublic, job_public


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]
    guards = [requires_viewer]

    @get("/{job_id:int}", sync_to_thread=True)
    def get_job(self, request: Request[Any, Any, Any], job_id: int) -> JobPublic:
        with db(request) as session:
            return job_public(service.get_job(session, job_id))
