"""A person's journey runs: exported; on erasure every run of theirs ends (nothing more is sent)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from crm.db import utcnow
from crm.journeys import stats
from crm.journeys.models import EnrolmentState, JourneyEnrolment


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    return {"journeys": stats.of_contact(session, contact_id)}


def forget(session: Session, contact_id: int) -> None:
    e = JourneyEnrolment
    session.execute(update(e).where(e.contact_id == contact_id, e.state == EnrolmentState.active)
                    .values(state=EnrolmentState.exited, finished_at=utcnow(), exit_reason="erased",
                            pending_campaign_id=None))
