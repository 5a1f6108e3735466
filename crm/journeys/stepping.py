"""The journey tick: enrol, exit, hand due steps to the campaign pipeline, keep the steps' campaigns in step.

One transaction per journey, holding the journey's row lock, so two beats (or a beat and a test) take
turns. Every statement is set work over the enrolment table; nobody is loaded into Python. A due step
is handed over in two statements: mark the due runs (`step + 1`, the step's campaign, this tick's
time), then INSERT ... SELECT one delivery per marked run, ON CONFLICT DO NOTHING on the delivery's
unique (campaign, contact), which is unique (run, step). The pipeline then claims, throttles,
re-checks and sends those rows like any campaign's; the next wait starts when the delivery is done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select, update
from sqlmodel import Session

from crm.campaigns import lifecycle
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import dialect_insert, is_postgres, session_scope, utcnow
from crm.journeys import enrolment
from crm.journeys.models import EnrolmentState, Journey, JourneyCampaign, JourneyState, JourneyStep
from crm.segments.service import compile_rules

E = enrolment.E
ACTIVE = EnrolmentState.active
PENDING = (DeliveryStatus.queued, DeliveryStatus.sending)
INACTIVITY_SCAN = dt.timedelta(hours=1)


@dataclass
class TickSummary:
    journeys: int = 0
    handed: dict[str, int] = field(default_factory=dict)  # "journey:position" -> deliveries added

    def as_dict(self) -> dict[str, Any]:
        return {"journeys": self.journeys, "handed": self.handed}


# --- quiet hours ---------------------------------------------------------------------------------


def quiet(settings: Settings, now: dt.datetime) -> bool:
    """CRM_QUIET_HOURS ("21-8": from 21:00 to 08:00 in CRM_TIMEZONE); empty is never quiet."""
    if not settings.quiet_hours:
        return False
    start, end = (int(x) for x in settings.quiet_hours.split("-"))
    hour = now.astimezone(ZoneInfo(settings.timezone)).hour
    if start == end:
        return False
    return start <= hour < end if start < end else hour >= start or hour < end


# --- the steps' campaigns ------------------------------------------------------------------------


def desired_state(settings: Settings, journey: Journey, now: dt.datetime) -> str:
    sending = journey.state == JourneyState.active and not quiet(settings, now)
    return CampaignState.sending if sending else CampaignState.paused


def campaign_for(session: Session, settings: Settings, journey: Journey, step: JourneyStep, round_: int,
                 now: dt.datetime) -> int:
    """The hidden campaign carrying `step` to runs numbered `round_` (made on first use)."""
    found = session.scalar(select(JourneyCampaign.campaign_id).where(JourneyCampaign.step_id == step.id,
                                                                     JourneyCampaign.round == round_))
    if found is not None:
        return found
    name = f"{journey.name} · step {step.position + 1}" + (f" · run {round_}" if round_ > 1 else "")
    campaign = Campaign(kind=CampaignKind.journey, name=name[:200], subject=step.subject, list=journey.list,
                        template=step.template, body_html=step.body_html, body_text=step.body_text,
                        translations=step.translations or {}, track_opens=journey.track_opens,
                        track_clicks=journey.track_clicks, state=desired_state(settings, journey, now),
                        planned_at=now, started_at=now, created_by="journey", created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    assert campaign.id is not None and step.id is not None
    session.add(JourneyCampaign(step_id=step.id, round=round_, journey_id=journey.id or 0, campaign_id=campaign.id))
    session.flush()
    return campaign.id


def reconcile(session: Session, settings: Settings, journey: Journey, now: dt.datetime | None = None) -> None:
    """Steps' campaigns send only while the journey is active and outside quiet hours."""
    want = desired_state(settings, journey, now or utcnow())
    ids = select(JourneyCampaign.campaign_id).where(JourneyCampaign.journey_id == journey.id).scalar_subquery()
    moved = session.scalars(update(Campaign).where(Campaign.id.in_(ids), Campaign.state != want)
                            .values(state=want, updated_at=utcnow()).returning(Campaign.id)).all()
    if want == CampaignState.sending:
        for campaign_id in moved:
            lifecycle.kick(session, campaign_id)


# --- runs moving along ---------------------------------------------------------------------------


def settle(session: Session, journey: Journey, now: dt.datetime) -> None:
    """Runs whose step is done (sent, skipped, failed) start the next wait from when it went."""
    d = Delivery
    mine = and_(d.campaign_id == E.pending_campaign_id, d.contact_id == E.contact_id)
    went = select(d.sent_at).where(mine).scalar_subquery()
    status = func.coalesce(select(d.status).where(mine).scalar_subquery(), "none")  # per row, by the unique index
    session.execute(update(E).where(
        E.journey_id == journey.id, E.state == ACTIVE, E.pending_campaign_id.is_not(None),
        status.not_in([s.value for s in PENDING]),
    # A step skipped or failed counts from when it was handed over (anchor_at holds that time).
    ).values(anchor_at=func.coalesce(went, E.anchor_at), pending_campaign_id=None))


def complete(session: Session, journey: Journey, steps: int, now: dt.datetime) -> None:
    session.execute(update(E).where(E.journey_id == journey.id, E.state == ACTIVE, E.pending_campaign_id.is_(None),
                                    E.step >= steps)
                    .values(state=EnrolmentState.completed, finished_at=now, exit_step=None))


def hand_over(session: Session, settings: Settings, journey: Journey, step: JourneyStep, now: dt.datetime) -> int:
    """Give step `step` to every run due it: one delivery per run, in the step's campaign."""
    due = and_(E.journey_id == journey.id, E.state == ACTIVE, E.step == step.position,
               E.pending_campaign_id.is_(None), E.anchor_at <= now - dt.timedelta(minutes=step.wait_minutes))
    enrolment.exit_unmailable(session, journey, due, now)
    added = 0
    for round_ in session.scalars(select(E.round).where(due).distinct()).all():
        campaign_id = campaign_for(session, settings, journey, step, round_, now)
        # anchor_at = now marks this tick's runs (it is overwritten when the delivery is done).
        session.execute(update(E).where(due, E.round == round_)
                        .values(step=step.position + 1, pending_campaign_id=campaign_id, anchor_at=now))
        added += _deliveries(session, journey, step, campaign_id, now)
        lifecycle.kick(session, campaign_id)
    return added


def _deliveries(session: Session, journey: Journey, step: JourneyStep, campaign_id: int, now: dt.datetime) -> int:
    fits = compile_rules(step.segment) if step.segment else None
    status: Any = (case((fits, DeliveryStatus.queued.value), else_=DeliveryStatus.skipped.value)
                   if fits is not None else literal(DeliveryStatus.queued.value))
    error: Any = (case((fits, None), else_="the step's segment did not match") if fits is not None
                  else literal(None))
    marked = and_(E.journey_id == journey.id, E.pending_campaign_id == campaign_id, E.anchor_at == now,
                  E.state == ACTIVE)
    src = (select(literal(campaign_id), E.contact_id, status, literal(0), error)
           .select_from(E).join(Contact, Contact.id == E.contact_id).where(marked))
    session.execute(dialect_insert(session)(Delivery.__table__)  # type: ignore[attr-defined]
                    .from_select(["campaign_id", "contact_id", "status", "attempts", "error"], src)
                    .on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"]))
    return session.scalar(select(func.count()).select_from(E).where(marked)) or 0


# --- the tick ------------------------------------------------------------------------------------


def tick_journey(session: Session, settings: Settings, journey: Journey, now: dt.datetime) -> dict[str, int]:
    handed: dict[str, int] = {}
    if journey.state == JourneyState.active:
        if "inactive_days" in journey.trigger:
            if journey.scanned_at is None or journey.scanned_at < now - INACTIVITY_SCAN:
                enrolment.enrol_inactive(session, journey, now)
                session.execute(update(Journey).where(Journey.id == journey.id).values(scanned_at=now))
        else:
            enrolment.enrol_from_events(session, journey, now)
        settle(session, journey, now)  # first, so a run that leaves now is counted at the step it waits for
        enrolment.exit_from_events(session, journey, now)
        enrolment.advance_cursor(session, journey, now)
        steps = list(session.scalars(select(JourneyStep).where(JourneyStep.journey_id == journey.id,
                                                               JourneyStep.removed.is_(False))
                                     .order_by(JourneyStep.position)))
        for step in steps:
            n = hand_over(session, settings, journey, step, now)
            if n:
                handed[f"{journey.id}:{step.position}"] = n
        complete(session, journey, len(steps), now)
    reconcile(session, settings, journey, now)
    return handed


def tick(settings: Settings, now: dt.datetime | None = None) -> TickSummary:
    """Every active or paused journey once; the beat runs this every CRM_JOURNEY_TICK_SECONDS."""
    summary = TickSummary()
    with session_scope(settings) as session:
        ids = list(session.scalars(select(Journey.id).where(Journey.state.in_([JourneyState.active,
                                                                               JourneyState.paused]))))
    for journey_id in ids:
        with session_scope(settings) as session:
            stmt = select(Journey).where(Journey.id == journey_id)
            if is_postgres(session):
                stmt = stmt.with_for_update()  # a second beat waits here, then finds nothing due
            journey = session.scalars(stmt).first()
            if journey is None:
                continue
            summary.journeys += 1
            summary.handed.update(tick_journey(session, settings, journey, now or utcnow()))
    return summary
