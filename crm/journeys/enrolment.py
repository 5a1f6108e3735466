"""Who enters and who leaves a journey: set-based statements over the committed event log.

Events are read past `journey.event_cursor`, which moves only past events older than SETTLE: an
event id is taken at insert but seen at commit, so a slower transaction can still commit a smaller
id for a while. Events in that window are read again on the next tick, and reading one twice
changes nothing: an enrolment is unique per (journey, trigger event) and per (journey, person, round),
and at most one run of a person is active (a partial unique index).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.campaigns.models import Delivery, DeliveryStatus
from crm.contacts.gate import mailable, mailable_audience
from crm.contacts.models import Contact
from crm.db import UTCDateTime, dialect_insert
from crm.events.models import Event
from crm.journeys.models import EnrolmentState, Journey, JourneyEnrolment, Reentry
from crm.journeys.service import FILTERS

SETTLE = dt.timedelta(minutes=10)  # longer than any transaction that writes events
IMPORTED = ("import", "staff")
E = JourneyEnrolment
ACTIVE = EnrolmentState.active


def found(stmt: Any) -> ColumnElement[bool]:
    """`EXISTS`, written as a scalar subquery so PostgreSQL runs it per row by index.

    A plain EXISTS is flattened into a join, and on a table without statistics yet (a fresh install, the
    first burst of enrolments) the planner then nests loops over whole tables: minutes for 2,000 rows.
    """
    return stmt.limit(1).scalar_subquery().is_not(None)


def can_mail(list_key: str, contact_id: Any) -> ColumnElement[bool]:
    """The one mailing gate (contacts.mailable) for the person `contact_id` names."""
    return found(select(Contact.id).where(Contact.id == contact_id, mailable(list_key)))


def _source(ev: Any) -> ColumnElement[str]:
    return func.coalesce(ev.data["source"].as_string(), "")


def matches(ev: Any, spec: dict[str, Any]) -> ColumnElement[bool]:
    """An event spec ({"event": type, filter: value or [values]}) as a condition on `ev`."""
    conds: list[ColumnElement[bool]] = [ev.type == spec["event"]]
    for key, value in spec.items():
        if key != "event":
            values = value if isinstance(value, list) else [value]
            conds.append(ev.data[FILTERS[key]].as_string().in_(values))
    return and_(*conds)


def _not_imported(ev: Any) -> ColumnElement[bool]:
    return _source(ev).not_in(IMPORTED)


def _contact_imported() -> ColumnElement[bool]:
    """The person's record was made by a CSV import or by staff (its contact.created event says so)."""
    created = aliased(Event)
    return exists().where(created.contact_id == Contact.id, created.type == "contact.created",
                          _source(created).in_(IMPORTED))


def _round(journey_id: int, contact_id: Any) -> Any:
    previous = aliased(JourneyEnrolment)
    return (func.coalesce(select(func.max(previous.round)).where(previous.journey_id == journey_id,
                                                                  previous.contact_id == contact_id)
                          .scalar_subquery(), 0) + 1)


def _insert(session: Session, src: Any) -> None:
    cols = ["journey_id", "contact_id", "round", "state", "step", "anchor_at", "event_id", "started_at",
            "enrolled_at"]
    # Any unique index (round, trigger event, one active run) turns a second insert into nothing.
    session.execute(dialect_insert(session)(JourneyEnrolment.__table__)  # type: ignore[attr-defined]
                    .from_select(cols, src).on_conflict_do_nothing())


def _earlier_run(journey: Journey, ev: Any) -> ColumnElement[bool]:
    """A run of this person that blocks this event from starting another, by the re-entry mode."""
    other = aliased(JourneyEnrolment)
    same = and_(other.journey_id == journey.id, other.contact_id == ev.contact_id)
    runs = select(other.id).where(same)
    if journey.reentry == Reentry.never:
        return found(runs)
    newer = or_(other.event_id == ev.id, other.started_at >= ev.occurred_at, other.finished_at >= ev.occurred_at)
    if journey.reentry == Reentry.after_exit:
        return found(runs.where(or_(other.state == ACTIVE, newer)))
    return found(runs.where(or_(other.event_id == ev.id, other.started_at >= ev.occurred_at)))


def _trigger_events(journey: Journey) -> tuple[Any, ColumnElement[bool]]:
    ev = aliased(Event)
    cond = and_(ev.id > journey.event_cursor, matches(ev, journey.trigger), ev.contact_id.is_not(None))
    if not journey.include_imported:
        cond = and_(cond, _not_imported(ev))
    return ev, cond


def enrol_from_events(session: Session, journey: Journey, now: dt.datetime) -> None:
    ev, cond = _trigger_events(journey)
    blocked = _earlier_run(journey, ev)
    if journey.reentry == Reentry.always:
        _restart(session, journey, now)
    src = (select(literal(journey.id), ev.contact_id, _round(journey.id or 0, ev.contact_id), literal(ACTIVE.value),
                  literal(0), literal(now, UTCDateTime), ev.id, ev.occurred_at, literal(now, UTCDateTime))
           .where(cond, not_(blocked), can_mail(journey.list, ev.contact_id)).order_by(ev.id))
    _insert(session, src)


def _restart(session: Session, journey: Journey, now: dt.datetime) -> None:
    """`always`: a new trigger ends the run in progress, so the person starts again from step one."""
    ev, cond = _trigger_events(journey)
    used = aliased(JourneyEnrolment)
    fresh = found(select(ev.id).where(cond, ev.contact_id == E.contact_id, ev.occurred_at > E.started_at,
                                      ~found(select(used.id).where(used.journey_id == journey.id,
                                                                   used.event_id == ev.id))))
    _leave(session, journey, fresh, "restarted", now)


def enrol_inactive(session: Session, journey: Journey, now: dt.datetime) -> None:
    """Mailable people silent (no open, click or confirmation) for `inactive_days`, each once per silence."""
    days = int(journey.trigger["inactive_days"])
    cutoff = now - dt.timedelta(days=days)
    other = aliased(JourneyEnrolment)
    same = and_(other.journey_id == journey.id, other.contact_id == Contact.id)
    if journey.reentry == Reentry.never:
        blocked = exists().where(same)
    else:  # again only after a whole new silence since the last run
        blocked = exists().where(same, or_(other.state == ACTIVE, other.enrolled_at >= cutoff,
                                           other.finished_at >= cutoff))
    cond = and_(func.coalesce(Contact.last_engaged_at, Contact.created_at) < cutoff, mailable_audience(journey.list),
                not_(blocked), true() if journey.include_imported else not_(_contact_imported()))
    src = select(literal(journey.id), Contact.id, _round(journey.id or 0, Contact.id), literal(ACTIVE.value),
                 literal(0), literal(now, UTCDateTime), literal(None), literal(now, UTCDateTime),
                 literal(now, UTCDateTime)).where(cond).order_by(Contact.id)
    _insert(session, src)


def exit_specs(journey: Journey) -> list[dict[str, Any]]:
    """The journey's own exit events, and the ones that always end a run."""
    return [*journey.exit, {"event": "subscription.unsubscribed", "list": journey.list}, {"event": "contact.erased"}]


def exit_from_events(session: Session, journey: Journey, now: dt.datetime) -> None:
    for spec in exit_specs(journey):
        ev = aliased(Event)
        since = and_(ev.id > journey.event_cursor, matches(ev, spec))
        happened = found(select(ev.id).where(since, ev.contact_id == E.contact_id, ev.occurred_at >= E.started_at,
                                             or_(E.event_id.is_(None), ev.id != E.event_id)))
        who = E.contact_id.in_(select(ev.contact_id).where(since))
        _leave(session, journey, and_(who, happened), spec["event"], now)


def exit_unmailable(session: Session, journey: Journey, due: ColumnElement[bool], now: dt.datetime) -> None:
    """People due a step who can no longer be mailed on the list leave rather than queue skipped mail."""
    gone = ~can_mail(journey.list, E.contact_id)
    _leave(session, journey, and_(due, gone), "not mailable", now)


def _leave(session: Session, journey: Journey, cond: ColumnElement[bool], reason: str, now: dt.datetime) -> int:
    """End the runs matching `cond`; mail of theirs still queued is skipped (a message in flight may go)."""
    rows = session.execute(update(E).where(E.journey_id == journey.id, E.state == ACTIVE, cond).values(
        state=EnrolmentState.exited, finished_at=now, exit_reason=reason[:80],
        # Waiting on step n's delivery means they leave at step n, which is then skipped.
        exit_step=case((E.pending_campaign_id.is_(None), E.step), else_=E.step - 1),
    ).returning(E.id, E.pending_campaign_id, E.contact_id)).all()
    pending = [(r[0], r[1], r[2]) for r in rows if r[1] is not None]
    for i in range(0, len(pending), 1000):
        chunk = pending[i:i + 1000]
        session.execute(update(Delivery).where(
            Delivery.status == DeliveryStatus.queued,
            tuple_(Delivery.campaign_id, Delivery.contact_id).in_([(c, p) for _, c, p in chunk]),
        ).values(status=DeliveryStatus.skipped, error="left the journey before this step went"))
        session.execute(update(E).where(E.id.in_([i for i, _, _ in chunk])).values(pending_campaign_id=None))
    return len(rows)


def advance_cursor(session: Session, journey: Journey, now: dt.datetime) -> None:
    settled = session.scalar(select(func.max(Event.id)).where(Event.id > journey.event_cursor,
                                                              Event.occurred_at < now - SETTLE))
    if settled:
        session.execute(update(Journey).where(Journey.id == journey.id).values(event_cursor=settled))
