"""CSV export of contacts: streamed in keyset batches, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts.models import Contact, ContactInterest, ContactStatus, ContactTag, Subscription
from crm.db import session_scope
from crm.errors import NotFound
from crm.segments import service as segments
from crm.staff.models import AuditEvent

BATCH = 1000
HEADER = ("id", "email", "first_name", "last_name", "phone", "postal_code", "language", "role", "status",
          "interests", "tags", "newsletter", "volunteer-updates", "donor-updates", "created_at")
# OWASP CSV injection: a cell a spreadsheet would read as a formula gets a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([neutralise(c) for c in cells])
    return buf.getvalue()


def condition(session: Session, segment_id: int | None) -> Any:
    """Who is exported: everyone not erased, or the members of a saved segment (its rules, no list gate)."""
    if segment_id is None:
        return Contact.status != ContactStatus.erased
    if not 0 < segment_id < 2**31:
        raise NotFound(f"no segment {segment_id}")
    return segments.matching(segments.get_segment(session, segment_id).rules)


def start(session: Session, segment_id: int | None, staff_email: str) -> int:
    """Check the segment and write the audit row before the first byte goes out; returns its id."""
    condition(session, segment_id)
    event = AuditEvent(staff_email=staff_email, action="contacts.export_csv",
                       target=f"segment:{segment_id}" if segment_id is not None else "all", rows=0,
                       detail={"segment_id": segment_id, "finished": False})
    session.add(event)
    session.flush()
    assert event.id is not None
    return event.id


def stream(settings: Settings, segment_id: int | None, audit_id: int) -> Iterator[str]:
    """Yield the CSV a batch at a time; the audit row gets the row count when the stream ends."""
    rows = 0
    try:
        yield _line(list(HEADER))
        after = 0
        while True:
            with session_scope(settings) as session:
                batch = list(session.scalars(select(Contact).where(condition(session, segment_id), Contact.id > after)
                                             .order_by(Contact.id).limit(BATCH)))
                if not batch:
                    break
                ids = [c.id for c in batch]
                interests = _grouped(session, ContactInterest.contact_id, ContactInterest.interest_key, ids)
                tags = _grouped(session, ContactTag.contact_id, ContactTag.tag, ids)
                subs: dict[int, dict[str, str]] = {}
                for cid, lst, state in session.execute(select(Subscription.contact_id, Subscription.list,
                                                              Subscription.state)
                                                       .where(Subscription.contact_id.in_(ids))):
                    subs.setdefault(cid, {})[lst] = state
            out = io.StringIO()
            for c in batch:
                s = subs.get(c.id, {})  # type: ignore[arg-type]
                out.write(_line([c.id, c.email, c.first_name, c.last_name, c.phone, c.postal_code, c.language,
                                 c.role, c.status, ";".join(interests.get(c.id, [])),  # type: ignore[arg-type]
                                 ";".join(tags.get(c.id, [])), s.get("newsletter", ""),  # type: ignore[arg-type]
                                 s.get("volunteer-updates", ""), s.get("donor-updates", ""),
                                 c.created_at.isoformat()]))
            rows += len(batch)
            after = batch[-1].id  # type: ignore[assignment]
            yield out.getvalue()
    finally:
        with session_scope(settings) as session:
            event = session.get(AuditEvent, audit_id)
            if event is not None:
                event.rows = rows
                event.detail = {**event.detail, "finished": True}
                session.add(event)


def _grouped(session: Session, key_col: Any, value_col: Any, ids: list[Any]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for cid, value in session.execute(select(key_col, value_col).where(key_col.in_(ids)).order_by(key_col, value_col)):
        out.setdefault(cid, []).append(value)
    return out
