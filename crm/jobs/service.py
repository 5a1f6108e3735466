"""Jobs: an uploaded file stored in the database in pieces, and the progress of the work on it."""

from __future__ import annotations

import datetime as dt
import io
from typing import IO, Any

from sqlalchemy import and_, func, or_, select, update
from sqlmodel import Session

from crm.db import utcnow
from crm.errors import Invalid, NotFound
from crm.jobs.models import Job, JobChunk, JobState
from crm.queue import IMPORT_CONTACTS, publish

CHUNK = 1 << 20
MAX_ERRORS = 1000  # kept per job; error_count keeps counting past it


def create_job(session: Session, kind: str, source: IO[bytes], filename: str, staff_email: str) -> Job:
    """Store the file piece by piece (never whole in memory) and a queued job pointing at it."""
    now = utcnow()
    job = Job(kind=kind, filename=filename[:300], created_by=staff_email, created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    seq, lines, size, last = 0, 0, 0, b""
    while piece := source.read(CHUNK):
        chunk = JobChunk(job_id=job.id, seq=seq, data=piece)
        session.add(chunk)
        session.flush()
        session.expunge(chunk)  # the session must not keep the whole file alive
        seq, size, lines, last = seq + 1, size + len(piece), lines + piece.count(b"\n"), piece[-1:]
    if size == 0:
        raise Invalid.field("file", "is empty; a CSV with an `email` header is expected")
    # Header line excluded; a last line without its newline still counts.
    job.total = max(0, lines + (0 if last == b"\n" else 1) - 1)
    session.add(job)
    session.flush()
    return job


class _ChunkReader(io.RawIOBase):
    """A file-like view over a job's chunks that reads one chunk at a time."""

    def __init__(self, session: Session, job_id: int) -> None:
        self.session, self.job_id, self.seq, self.buf = session, job_id, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self.buf:
            data = self.session.scalar(select(JobChunk.data).where(JobChunk.job_id == self.job_id,
                                                                   JobChunk.seq == self.seq))
            if data is None:
                return 0
            self.seq += 1
            self.buf = bytes(data)
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def open_text(session: Session, job_id: int) -> io.TextIOWrapper:
    """The stored file as text (UTF-8, a BOM from spreadsheet tools ignored), for csv.reader."""
    return io.TextIOWrapper(io.BufferedReader(_ChunkReader(session, job_id), CHUNK), encoding="utf-8-sig",
                            errors="strict", newline="")


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id) if 0 < job_id < 2**31 else None
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


STALE_SECONDS = 300  # a running job whose counters have not moved for this long lost its worker


def claim(session: Session, job_id: int, now: dt.datetime | None = None) -> bool:
    """Atomically take a queued job, or a running one whose worker died; False if someone else has it."""
    now = now or utcnow()
    stale = now - dt.timedelta(seconds=STALE_SECONDS)
    result = session.execute(
        update(Job).where(Job.id == job_id, or_(Job.state == JobState.queued,
                                                and_(Job.state == JobState.running, Job.updated_at < stale)))
        .values(state=JobState.running, updated_at=now, started_at=func.coalesce(Job.started_at, now)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def due(session: Session, queued_for: float = 60.0) -> list[int]:
    """Jobs a broker outage or a dead worker left behind: what the periodic sweep re-enqueues."""
    now = utcnow()
    return list(session.scalars(select(Job.id).where(or_(
        and_(Job.state == JobState.queued, Job.created_at < now - dt.timedelta(seconds=queued_for)),
        and_(Job.state == JobState.running, Job.updated_at < now - dt.timedelta(seconds=STALE_SECONDS))))
        .order_by(Job.id).limit(100)))


def add_errors(job: Job, errors: list[dict[str, Any]]) -> None:
    job.error_count += len(errors)
    room = MAX_ERRORS - len(job.errors)
    if room > 0 and errors:
        job.errors = [*job.errors, *errors[:room]]  # a new list, so SQLAlchemy sees the JSON change


def mark(session: Session, job: Job, state: JobState, message: str | None = None) -> None:
    now = utcnow()
    job.state = state
    job.updated_at = now
    if state == JobState.running and job.started_at is None:
        job.started_at = now
    if state in (JobState.done, JobState.failed):
        job.finished_at = now
        if state == JobState.done:
            job.total = job.processed
    if message is not None:
        job.message = message[:1000]
    session.add(job)


def drop_file(session: Session, job_id: int) -> None:
    """The upload holds personal data: gone once the job has finished with it."""
    from sqlalchemy import delete

    session.execute(delete(JobChunk).where(JobChunk.job_id == job_id))


def job_dict(job: Job) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "state": job.state, "filename": job.filename, "total": job.total,
            "processed": job.processed, "created": job.created, "updated": job.updated, "unchanged": job.unchanged,
            "error_count": job.error_count, "errors": job.errors, "message": job.message,
            "created_by": job.created_by, "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}



def republish_due(session: Session) -> int:
    """Wake a worker (on commit) for each job a lost wake-up call or a dead worker left behind."""
    ids = due(session)
    for job_id in ids:
        publish(session, IMPORT_CONTACTS, job_id)
    return len(ids)


def summary(job: Job) -> dict[str, Any]:
    """What the import task reports."""
    out = job_dict(job)
    return {k: out[k] for k in ("id", "state", "processed", "created", "updated", "error_count")}
