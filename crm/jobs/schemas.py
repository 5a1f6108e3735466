"""The staff API's job shape: progress and per-row errors of a background job."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from crm.jobs.models import Job


class JobPublic(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    state: str
    filename: str
    total: int | None
    processed: int
    created: int
    updated: int
    unchanged: int
    error_count: int
    errors: list[dict[str, Any]]  # {"row", "field", "error"} per refused row, the first ones
    message: str | None
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when else None


def job_public(job: Job) -> JobPublic:
    assert job.id is not None
    return JobPublic(
        id=job.id, kind=job.kind, state=job.state, filename=job.filename, total=job.total,
        processed=job.processed, created=job.created, updated=job.updated, unchanged=job.unchanged,
        error_count=job.error_count, errors=job.errors, message=job.message, created_by=job.created_by,
        created_at=job.created_at.isoformat(), updated_at=job.updated_at.isoformat(),
        started_at=_iso(job.started_at), finished_at=_iso(job.finished_at),
    )
