"""Per-step figures of a journey and one person's runs, each a GROUP BY (never a loop over people)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.campaigns.models import Delivery, DeliveryStatus
from crm.db import iso
from crm.journeys.models import EnrolmentState, Journey, JourneyCampaign, JourneyEnrolment, JourneyStep
from crm.journeys.service import get


def _n(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def stats(session: Session, journey_id: int) -> dict[str, Any]:
    """`steps`: per step entered, sent, skipped, exited, opened, clicked (SPEC 13), plus the runs' totals."""
    journey = get(session, journey_id)
    d = Delivery
    rows = session.execute(
        select(JourneyStep.position, func.count(d.id), _n(d.status == DeliveryStatus.sent),
               _n(d.status == DeliveryStatus.skipped), _n(d.status.in_([DeliveryStatus.queued, DeliveryStatus.sending])),
               _n(d.status.in_([DeliveryStatus.failed, DeliveryStatus.bounced])),
               _n(d.opened_at.is_not(None)), _n(d.clicked_at.is_not(None)))
        .join(JourneyCampaign, JourneyCampaign.step_id == JourneyStep.id)
        .join(d, d.campaign_id == JourneyCampaign.campaign_id)
        .where(JourneyStep.journey_id == journey_id).group_by(JourneyStep.position)).all()
    by_position = {r[0]: [int(v) for v in r[1:]] for r in rows}
    e = JourneyEnrolment
    exited = dict(session.execute(select(e.exit_step, func.count()).where(
        e.journey_id == journey_id, e.state == EnrolmentState.exited, e.exit_step.is_not(None))
        .group_by(e.exit_step)).tuples().all())
    steps = []
    for step in session.scalars(select(JourneyStep).where(JourneyStep.journey_id == journey_id,
                                                          JourneyStep.removed.is_(False)).order_by(JourneyStep.position)):
        entered, sent, skipped, queued, failed, opened, clicked = by_position.get(step.position, [0] * 7)
        steps.append({"position": step.position, "subject": step.subject, "entered": entered, "sent": sent,
                      "skipped": skipped, "queued": queued, "failed": failed, "exited": int(exited.get(step.position, 0)),
                      "opened": opened, "clicked": clicked})
    runs = dict(session.execute(select(e.state, func.count()).where(e.journey_id == journey_id)
                                .group_by(e.state)).tuples().all())
    return {"journey_id": journey.id, "state": journey.state, "steps": steps,
            "enrolments": {s.value: int(runs.get(s.value, 0)) for s in EnrolmentState}}


def of_contact(session: Session, contact_id: int) -> list[dict[str, Any]]:
    """A person's runs through journeys, newest first: where they are and how each ended."""
    e = JourneyEnrolment
    total = (select(func.count()).where(JourneyStep.journey_id == e.journey_id, JourneyStep.removed.is_(False))
             .scalar_subquery())
    rows = session.execute(select(e, Journey.name, total).join(Journey, Journey.id == e.journey_id)
                           .where(e.contact_id == contact_id).order_by(e.id.desc())).all()
    return [{"id": r.id, "journey_id": r.journey_id, "journey": name, "round": r.round, "state": r.state,
             "steps_handed": r.step, "steps": int(steps or 0), "waiting_on_send": r.pending_campaign_id is not None,
             "enrolled_at": iso(r.enrolled_at), "next_wait_from": iso(r.anchor_at) if r.state == "active" else None,
             "finished_at": iso(r.finished_at), "exit_reason": r.exit_reason}
            for r, name, steps in rows]
