"""Before an import starts: the file's columns, and staff's choice of what unknown ones mean.

The importer reads columns by header name and ignores (and names) the ones it does not know. A
spreadsheet's "E-mail" or "Given name" would be lost that way, so the console lets staff map
them first: the header line of the stored file is rewritten, then the job is queued as usual.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlmodel import Session

from crm.contacts.importer import COLUMNS
from crm.errors import Conflict, Invalid
from crm.jobs import service as jobs
from crm.jobs.models import Job, JobChunk, JobState

LABELS = {"email": "Email address", "first_name": "First name", "last_name": "Last name", "phone": "Phone",
          "postal_code": "Postal code", "language": "Language (en or es)", "role": "Role",
          "interests": "Interests (keys, separated by ;)", "tags": "Tags (separated by ;)",
          "subscribe": "Lists to subscribe (separated by ;)", "consent": "Consent given (yes or no)"}
IGNORE = ""


def header(session: Session, job_id: int) -> list[str]:
    """The first line's cells as the importer will read them (trimmed, lower-case)."""
    try:
        first = next(csv.reader(jobs.open_text(session, job_id)), [])
    except (UnicodeDecodeError, csv.Error):
        return []  # the importer fails such a file with its own message
    return [h.strip().lower() for h in first]


def unknown(columns: list[str]) -> list[str]:
    return [c for c in columns if c and c not in COLUMNS]


def choices(columns: list[str]) -> list[str]:
    """Known columns the file does not have yet: what an unknown one may become."""
    return [c for c in COLUMNS if c not in columns]


def hold(session: Session, job: Job) -> None:
    """Keep a stored import from starting (and from the sweep) until its columns are chosen."""
    job.state = JobState.waiting
    session.add(job)


def apply_mapping(session: Session, job: Job, mapping: dict[str, str]) -> None:
    """Rename unknown columns (IGNORE leaves them for the importer to skip and name) and queue the job."""
    if job.state != JobState.waiting:
        raise Conflict(f"import {job.id} has already started", fields={"state": job.state})
    assert job.id is not None
    columns = header(session, job.id)
    targets = [t for t in mapping.values() if t != IGNORE]
    allowed = set(choices(columns))
    for source, target in mapping.items():
        if source not in unknown(columns):
            raise Invalid.field(source, "is not an unknown column of this file")
        if target != IGNORE and target not in allowed:
            raise Invalid.field(source, f"cannot become {target!r}; choose one of {', '.join(sorted(allowed))}")
    if len(targets) != len(set(targets)):
        raise Invalid.field("columns", "two columns cannot both become the same field")
    renamed = [mapping.get(c, IGNORE) or c for c in columns]
    if "email" not in renamed:
        raise Invalid.field("columns", "one column must be the email address: the import needs it on every row")
    _rewrite_header(session, job.id, renamed)
    job.state = JobState.queued
    session.add(job)


def _rewrite_header(session: Session, job_id: int, columns: list[str]) -> None:
    chunk = session.scalar(select(JobChunk).where(JobChunk.job_id == job_id, JobChunk.seq == 0))
    assert chunk is not None
    data = bytes(chunk.data)
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    body = data[len(bom):]
    end = body.find(b"\n")
    if end < 0:
        raise Invalid.field("file", "the header line is longer than the first megabyte of the file")
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n" if body[:end].endswith(b"\r") else "\n").writerow(columns)
    chunk.data = bom + line.getvalue().encode() + body[end + 1:]
    session.add(chunk)
