"""Background jobs staff start from the API (contact imports) and the file each one works on."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from crm.db import UTCDateTime, utcnow


class JobState(StrEnum):
    waiting = "waiting"  # stored, not started: staff are choosing what its unknown columns mean
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class Job(SQLModel, table=True):
    __tablename__ = "job"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    state: str = Field(default=JobState.queued, max_length=10, index=True)
    filename: str = Field(default="", max_length=300)
    total: int | None = None  # data lines in the file (a quoted field may span lines: an estimate)
    # Rows handled so far; committed with each batch, so a restarted task resumes after them.
    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=320)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class JobChunk(SQLModel, table=True):
    """The uploaded file in ~1 MiB pieces, in the database so any worker machine can read it."""

    __tablename__ = "job_chunk"
    job_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
