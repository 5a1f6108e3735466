"""CSV import of contacts: streamed, in bounded batches of set-based SQL, idempotent, resumable.

Columns by header name (case-insensitive, any order; unknown columns are ignored and named in the
job's message): `email` (required), first_name, last_name, phone, postal_code, language, role,
interests (`;`-separated keys), tags (`;`-separated), and two optional consent columns:
`subscribe` (`;`-separated lists) with `consent` = yes/true/1. Nobody is subscribed unless the row
says both: the charity got their consent elsewhere (a walk-event sign-up sheet). Such subscriptions
are `confirmed` at once with a consent event naming the staff member and the job.

Never undone by an import: an address erased at the person's request is skipped entirely; a
suppressed (unsubscribed, bounced, complained) address or a list the person left is never
re-subscribed (the profile is still updated; the row gets an error saying why).
Re-importing a file changes nothing: non-empty cells overwrite, empty ones keep what is stored,
interests and tags are merged, subscriptions only move forward.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlmodel import Session

from crm.contacts import roles
from crm.contacts import service as contacts
from crm.contacts.models import (
    ConsentEvent,
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Frequency,
    ListKey,
    Role,
    Subscription,
    SubscriptionState,
    Suppression,
)
from crm.db import utcnow
from crm.errors import Invalid
from crm.events import service as events
from crm.jobs import service as jobs
from crm.jobs.models import Job, JobState
from crm.mail import LANGUAGES
from crm.staff.service import audit

KIND = "contacts-import"
BATCH = 1000
COLUMNS = ("email", "first_name", "last_name", "phone", "postal_code", "language", "role", "interests", "tags",
           "subscribe", "consent")
PROFILE = ("first_name", "last_name", "phone", "postal_code", "language", "role")
YES = {"yes", "y", "true", "1", "x"}
NO = {"", "no", "n", "false", "0"}
LISTS = [k.value for k in ListKey]
ROLES = [r.value for r in Role]

Progress = Callable[[Job], None]


@dataclass
class _Row:
    line: int
    email: contacts.NormalizedEmail
    profile: dict[str, str]
    interests: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)

    def merge(self, other: _Row) -> None:
        """The same address twice in one batch: later cells win, sets are unioned."""
        self.line = other.line
        self.profile.update(other.profile)
        for name in ("interests", "tags", "lists"):
            setattr(self, name, list(dict.fromkeys([*getattr(self, name), *getattr(other, name)])))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _parse_row(line: int, values: dict[str, str], known_interests: set[str]) -> tuple[_Row | None, list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []

    def err(name: str, message: str) -> None:
        errors.append({"row": line, "field": name, "message": message})

    email = None
    try:
        email = contacts.normalize_email(values.get("email", ""))
    except Invalid as exc:
        err("email", exc.fields.get("email", exc.message))
    profile: dict[str, str] = {}
    for name, limit in (("first_name", 100), ("last_name", 100), ("phone", 40), ("postal_code", 20)):
        try:
            if value := contacts.clean_text(values.get(name), name, max_length=limit):
                profile[name] = value
        except Invalid as exc:
            err(name, exc.fields.get(name, exc.message))
    for name, allowed in (("language", LANGUAGES), ("role", ROLES)):
        value = (values.get(name) or "").strip().lower()
        if value and value not in allowed:
            err(name, f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
        elif value:
            profile[name] = value
    interests = _split(values.get("interests") or "")
    if unknown := [k for k in interests if k not in known_interests]:
        err("interests", f"unknown interest {', '.join(repr(k) for k in unknown)}")
    tags: list[str] = []
    try:
        tags = [contacts.clean_text(t, "tags", max_length=64) for t in _split(values.get("tags") or "")]
    except Invalid as exc:
        err("tags", exc.fields.get("tags", exc.message))
    lists = _split(values.get("subscribe") or "")
    if unknown := [k for k in lists if k not in LISTS]:
        err("subscribe", f"unknown list {', '.join(repr(k) for k in unknown)}; expected any of {', '.join(LISTS)}")
    consent = (values.get("consent") or "").strip().lower()
    if consent not in YES | NO:
        err("consent", "must be yes or no")
    elif lists and consent not in YES:
        err("consent", "must be yes to subscribe: only people who consented may be put on a list")
    if errors or email is None:
        return None, errors
    return _Row(line, email, profile, list(dict.fromkeys(interests)), list(dict.fromkeys(tags)),
                list(dict.fromkeys(lists))), []


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _apply_batch(session: Session, job: Job, rows: dict[str, _Row]) -> tuple[_Counts, list[dict[str, Any]]]:
    """One batch in a handful of statements, whatever its size."""
    errors: list[dict[str, Any]] = []
    counts = _Counts()
    now = utcnow()
    hashes = {key: contacts.email_hash(session, key) for key in rows}
    suppressed = dict(session.execute(select(Suppression.email_hash, Suppression.reason)
                                      .where(Suppression.email_hash.in_(list(hashes.values())))).all())
    for key in list(rows):
        if suppressed.get(hashes[key]) == "erased":
            errors.append({"row": rows[key].line, "field": "email",
                           "message": "this address was erased at the person's request; not imported"})
            del rows[key]
    if not rows:
        return counts, errors
    cols = (Contact.id, Contact.email_key, Contact.status, *(getattr(Contact, p) for p in PROFILE))
    existing = {r.email_key: r for r in session.execute(select(*cols).where(Contact.email_key.in_(list(rows))))}
    new = [{"email": r.email.email, "email_key": key, "email_hash": hashes[key], "status": ContactStatus.active,
            "first_name": "", "last_name": "", "phone": "", "postal_code": "", "language": "en", "role": None,
            "bereaved": False, "soft_bounces": 0, "created_at": now, "updated_at": now, **r.profile}
           for key, r in rows.items() if key not in existing]
    _insert_many(session, Contact, new, ["email_key"])
    changed: list[dict[str, Any]] = []
    for key, current in existing.items():
        wanted = {p: rows[key].profile.get(p, getattr(current, p)) for p in PROFILE}
        if any(wanted[p] != getattr(current, p) for p in PROFILE):
            changed.append({"b_id": current.id, **wanted, "updated_at": now})
    if changed:
        session.execute(update(Contact.__table__).where(Contact.id == bindparam("b_id"))  # type: ignore[arg-type]
                        .values({p: bindparam(p) for p in (*PROFILE, "updated_at")}), changed)
    ids = dict(session.execute(select(Contact.email_key, Contact.id).where(Contact.email_key.in_(list(rows)))).all())
    events.record_many(session, "contact.created", sorted(set(ids.values()) - {c.id for c in existing.values()}), source="import")
    touched = {row["b_id"] for row in changed}
    touched |= _merge_links(session, ContactInterest, ContactInterest.interest_key,
                            {ids[k]: r.interests for k, r in rows.items() if r.interests})
    touched |= _merge_links(session, ContactTag, ContactTag.tag, {ids[k]: r.tags for k, r in rows.items() if r.tags})
    status = {k: existing[k].status if k in existing else ContactStatus.active for k in rows}
    wanted_subs: dict[int, list[str]] = {}
    for key, r in rows.items():
        if roles.is_role_address(r.email.email):
            # SPEC 14: flagged, and never put on a list by an import.
            errors.append({"row": r.line, "field": "email", "warning": True,
                           "message": f"{r.email.email} is a role address (a team's or a system's inbox, not a "
                                      "person's); profile imported, not subscribed"})
            continue
        if not r.lists:
            continue
        reason = suppressed.get(hashes[key]) or (status[key] if status[key] != ContactStatus.active else None)
        if reason:
            errors.append({"row": r.line, "field": "subscribe",
                           "message": f"address is suppressed ({reason}); profile imported, not subscribed"})
        else:
            wanted_subs[ids[key]] = r.lists
    touched |= _subscribe(session, job, wanted_subs, {ids[k]: r.line for k, r in rows.items()}, errors, now)
    known_ids = {existing[k].id for k in existing}
    counts.updated = len(touched & known_ids)
    counts.unchanged = len(known_ids) - counts.updated
    counts.created = len(set(ids.values()) - known_ids)
    return counts, errors


def _insert_many(session: Session, model: Any, rows: list[dict[str, Any]], conflict: list[str] | None = None) -> None:
    """INSERT ... ON CONFLICT DO NOTHING as one cached statement executed for many rows.

    crm.db.insert_ignore builds a multi-VALUES statement that SQLAlchemy compiles afresh for every
    batch (most of an import's time at 1000 rows); an executemany reuses one compiled statement
    and SQLAlchemy still sends the rows in a few round trips ("insertmanyvalues").
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(model.__table__).on_conflict_do_nothing(index_elements=conflict), rows)


def _merge_links(session: Session, model: Any, value_col: Any, wanted: dict[int, list[str]]) -> set[int]:
    """Add the (contact, value) links not there yet; returns the contacts that gained one."""
    if not wanted:
        return set()
    have = set(session.execute(select(model.contact_id, value_col).where(model.contact_id.in_(list(wanted)))).all())
    name = value_col.key
    rows = [{"contact_id": cid, name: v} for cid, values in wanted.items() for v in values if (cid, v) not in have]
    _insert_many(session, model, rows)
    return {r["contact_id"] for r in rows}


def _subscribe(session: Session, job: Job, wanted: dict[int, list[str]], lines: dict[int, int],
               errors: list[dict[str, Any]], now: Any) -> set[int]:
    if not wanted:
        return set()
    pairs = [(cid, lst) for cid, lists in wanted.items() for lst in lists]
    have = {(s.contact_id, s.list): (s.id, s.state) for s in session.execute(
        select(Subscription.id, Subscription.contact_id, Subscription.list, Subscription.state)
        .where(tuple_(Subscription.contact_id, Subscription.list).in_(pairs)))}
    fresh, confirm, confirmed = [], [], []
    for cid, lst in pairs:
        sid_state = have.get((cid, lst))
        if sid_state is None:
            fresh.append({"contact_id": cid, "list": lst, "state": SubscriptionState.confirmed, "created_at": now,
                          "confirmed_at": now, "frequency": Frequency.weekly if lst == ListKey.newsletter else None})
        elif sid_state[1] == SubscriptionState.pending:
            confirm.append({"b_id": sid_state[0], "confirmed_at": now})
        elif sid_state[1] == SubscriptionState.unsubscribed:
            errors.append({"row": lines[cid], "field": "subscribe",
                           "message": f"the person unsubscribed from {lst}; not re-subscribed"})
            continue
        else:
            continue
        confirmed.append((cid, lst))
    _insert_many(session, Subscription, fresh, ["contact_id", "list"])
    if confirm:
        session.execute(update(Subscription.__table__).where(Subscription.id == bindparam("b_id"))  # type: ignore[arg-type]
                        .values(state=SubscriptionState.confirmed, confirmed_at=bindparam("confirmed_at")), confirm)
    if confirmed:
        session.execute(insert(ConsentEvent), [
            {"contact_id": cid, "action": "staff-import", "list": lst, "detail": {"job_id": job.id},
             "source": "import", "staff_email": job.created_by, "created_at": now} for cid, lst in confirmed])
        for key in sorted({lst for _, lst in confirmed}):
            events.record_many(session, "subscription.confirmed", [c for c, lst in confirmed if lst == key], list=key, state="confirmed",
                                source="import")
    return {cid for cid, _ in confirmed}


def run(session: Session, job_id: int, *, progress: Progress | None = None, batch_size: int = BATCH) -> Job:
    """Process (or resume) an import job; commits after every batch so progress is visible and kept."""
    jobs.get_job(session, job_id)
    claimed = jobs.claim(session, job_id)
    session.commit()
    job = jobs.get_job(session, job_id)
    session.refresh(job)
    if not claimed:  # finished, or another worker is on it right now
        return job
    try:
        _run(session, job, progress, batch_size)
    except (UnicodeDecodeError, csv.Error) as exc:
        session.rollback()
        job = jobs.get_job(session, job_id)
        jobs.mark(session, job, JobState.failed, f"the file could not be read as UTF-8 CSV: {exc}")
        jobs.drop_file(session, job_id)
        session.commit()
    return job


_ANALYZE_AFTER = {2, 8, 32, 128, 512}


def _run(session: Session, job: Job, progress: Progress | None, batch_size: int) -> None:
    assert job.id is not None
    reader = csv.reader(jobs.open_text(session, job.id))
    header = _read_header(session, job, reader)
    if header is None:
        return
    known = contacts.interest_keys(session)
    skip, seen, batches = job.processed, 0, 0
    pending = _Pending()
    for record in reader:
        seen += 1
        if seen <= skip:
            continue
        pending.add(reader.line_num, record, header, known)
        if pending.size >= batch_size:
            batches += 1
            _commit_batch(session, job, pending, batches, progress)
            pending = _Pending()
    batches += 1
    _commit_batch(session, job, pending, batches, progress)
    jobs.mark(session, job, JobState.done)
    jobs.drop_file(session, job.id)
    audit(session, job.created_by, "contacts.import", f"job:{job.id}", rows=job.processed,
          detail={"created": job.created, "updated": job.updated, "errors": job.error_count})
    session.commit()
    if progress:
        progress(job)


def _read_header(session: Session, job: Job, reader: Iterator[list[str]]) -> list[str] | None:
    """The lower-cased column names; None (the job failed and committed) without an `email` column."""
    assert job.id is not None
    header = [h.strip().lower() for h in next(reader, [])]
    if "email" not in header:
        jobs.mark(session, job, JobState.failed, "the first line must be a header with an `email` column")
        jobs.drop_file(session, job.id)
        session.commit()
        return None
    ignored = [h for h in header if h and h not in COLUMNS]
    if ignored:
        job.message = f"ignored unknown columns: {', '.join(ignored)}"[:1000]
    return header


@dataclass
class _Pending:
    """The lines read since the last commit: their rows by address, their errors, how many."""

    rows: dict[str, _Row] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0

    def add(self, line: int, record: list[str], header: list[str], known: set[str]) -> None:
        self.size += 1
        if not any(cell.strip() for cell in record):
            pass  # a blank line: counted, nothing to do
        elif len(record) > len(header):
            self.errors.append({"row": line, "field": "row",
                                "message": f"has {len(record)} cells but the header has {len(header)}"})
        else:
            row, errors = _parse_row(line, dict(zip(header, record, strict=False)), known)
            self.errors.extend(errors)
            if row is not None:
                if row.email.key in self.rows:
                    self.rows[row.email.key].merge(row)
                else:
                    self.rows[row.email.key] = row


def _commit_batch(session: Session, job: Job, pending: _Pending, batches: int, progress: Progress | None) -> None:
    """Apply the pending rows and commit them with the job's counts, so a restart resumes after them."""
    counts, errors = _apply_batch(session, job, pending.rows) if pending.rows else (_Counts(), [])
    if batches in _ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # A big import into a small table leaves the planner's statistics stale until autovacuum
        # catches up, and the per-batch `email_key IN (...)` lookups then turn into sequential
        # scans (a 100k re-import took 3.6x the first import). Re-analyse as the tables grow.
        session.execute(text("ANALYZE contact, contact_interest, contact_tag, subscription"))
    job.processed += pending.size
    job.created += counts.created
    job.updated += counts.updated
    job.unchanged += counts.unchanged
    jobs.add_errors(job, sorted(pending.errors + errors, key=lambda e: e["row"]))
    job.updated_at = utcnow()
    session.add(job)
    session.commit()
    if progress:
        progress(job)
