"""Journeys: create, read, change, delete, activate and pause (SPEC 13).

A journey is checked whole when saved: every bad field is named in one 400 (`steps[1].wait.days: ...`),
and each step is render-checked like a campaign, so a step that would fail every delivery is refused
now rather than on somebody's third week. Steps are kept by position: editing a step of an active
journey changes what people who have not reached it get; a step cut from the end keeps its statistics.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from crm.campaigns import lifecycle
from crm.campaigns import service as campaigns
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.campaigns.proofs import check_renders
from crm.config import Settings
from crm.contacts.models import ListKey
from crm.db import iso, keyset_page, utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.events.models import Event
from crm.events.service import TYPES as EVENT_TYPES
from crm.journeys.models import Journey, JourneyCampaign, JourneyState, JourneyStep, Reentry
from crm.segments.service import validate_rules

FIELDS = ("name", "list", "trigger", "steps", "exit", "reentry", "include_imported", "track_opens",
          "track_clicks")
# Trigger and exit filters: the name staff write -> the event payload key it is compared with.
FILTERS = {"list": "list", "to": "to_status", "from": "from_status", "form": "form", "status": "status",
           "source": "source", "inquiry_status": "inquiry_status", "state": "state"}
STEP_FIELDS = ("wait", "subject", "body_html", "body_text", "translations", "template", "segment")
WAIT_UNITS = {"days": 1440, "hours": 60, "minutes": 1}
MAX_STEPS = 50
MAX_WAIT_MINUTES = 3 * 365 * 1440
_WORD = re.compile(r"^[A-Za-z0-9_.:@+-]{1,64}$")


# --- checking what staff sent -------------------------------------------------------------------


class _Errors(dict[str, str]):
    def check(self, name: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Invalid as exc:
            for key, why in (exc.fields or {name: exc.message}).items():
                # A parser shared with campaigns names its own field ("subject"): say which step's.
                self[key if key.startswith(name) else name] = why
            return None


def _name(v: Any) -> str:
    return campaigns.PARSERS["name"](None, None, v)  # type: ignore[arg-type]  # the same rules as a campaign's name


def _list(v: Any) -> str:
    allowed = [k.value for k in ListKey]
    if v not in allowed:
        raise Invalid.field("list", f"unknown list {v!r}; expected one of {', '.join(allowed)}")
    return str(v)


def _filters(spec: dict[str, Any], name: str) -> None:
    for key, value in spec.items():
        if key == "event":
            continue
        if key not in FILTERS:
            raise Invalid.field(name, f"unknown filter {key!r}; expected any of {', '.join(FILTERS)}")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(x, str) and _WORD.match(x) for x in values):
            raise Invalid.field(name, f"filter {key!r} must be a word (letters, digits, - _ . :) or a list of them")


def _event_spec(v: Any, name: str) -> dict[str, Any]:
    if isinstance(v, str):
        v = {"event": v}
    if not isinstance(v, dict) or not isinstance(v.get("event"), str):
        raise Invalid.field(name, "must name an event: {\"event\": \"subscription.confirmed\", ...filters}")
    if v["event"] not in EVENT_TYPES:
        raise Invalid.field(name, f"unknown event {v['event']!r}; expected one of {', '.join(EVENT_TYPES)}")
    _filters(v, name)
    return dict(v)


def _trigger(v: Any) -> dict[str, Any]:
    if isinstance(v, dict) and "inactive_days" in v:
        days = v["inactive_days"]
        if set(v) != {"inactive_days"} or isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise Invalid.field("trigger", "inactive_days must be a whole number of days from 1 to 3650, alone")
        return {"inactive_days": days}
    return _event_spec(v, "trigger")


def _exit(v: Any) -> list[dict[str, Any]]:
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > 20:
        raise Invalid.field("exit", "must be a list of events (at most 20), e.g. [\"volunteer.status_changed\"]")
    return [_event_spec(item, f"exit[{i}]") for i, item in enumerate(v)]


def _reentry(v: Any) -> str:
    allowed = [r.value for r in Reentry]
    if v not in allowed:
        raise Invalid.field("reentry", f"must be one of {', '.join(allowed)}")
    return str(v)


def _flag(name: str) -> Any:
    def parse(v: Any) -> bool:
        if not isinstance(v, bool):
            raise Invalid.field(name, "must be true or false")
        return v
    return parse


def _wait(v: Any, name: str) -> tuple[dict[str, int], int]:
    if v is None:
        return {}, 0
    if not isinstance(v, dict) or set(v) - set(WAIT_UNITS):
        raise Invalid.field(name, "must be {\"days\"?: n, \"hours\"?: n, \"minutes\"?: n}")
    for unit, n in v.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise Invalid.field(f"{name}.{unit}", "must be a whole number, 0 or more")
    minutes = sum(WAIT_UNITS[u] * n for u, n in v.items())
    if minutes > MAX_WAIT_MINUTES:
        raise Invalid.field(name, "must be at most three years")
    return {u: int(n) for u, n in v.items()}, minutes


def _step(session: Session, settings: Settings, v: Any, i: int, errors: _Errors) -> dict[str, Any]:
    name = f"steps[{i}]"
    if not isinstance(v, dict):
        errors[name] = "must be {wait, subject, body_html, body_text, translations?, template?, segment?}"
        return {}
    for key in sorted(set(v) - set(STEP_FIELDS)):
        errors[f"{name}.{key}"] = f"unknown field; expected any of {', '.join(STEP_FIELDS)}"
    out: dict[str, Any] = {"template": "campaign", "translations": {}, "segment": None}
    wait = errors.check(f"{name}.wait", _wait, v.get("wait"), f"{name}.wait")
    out["wait"], out["wait_minutes"] = wait if wait else ({}, 0)
    if "subject" not in v:
        errors[f"{name}.subject"] = "is required"
    for key, parse in campaigns.PARSERS.items():
        if key in v and key in STEP_FIELDS:
            out[key] = errors.check(f"{name}.{key}", parse, session, settings, v[key])
    if v.get("segment") is not None:
        if not isinstance(v["segment"], dict):
            errors[f"{name}.segment"] = "must be a rule tree (SPEC 6) or null"
        else:
            errors.check(f"{name}.segment", validate_rules, v["segment"], None, f"{name}.segment")
            out["segment"] = v["segment"]
    return out


def _steps(session: Session, settings: Settings, v: Any, errors: _Errors) -> list[dict[str, Any]] | None:
    if not isinstance(v, list) or not v:
        errors["steps"] = "must be a non-empty list of steps"
        return None
    if len(v) > MAX_STEPS:
        errors["steps"] = f"at most {MAX_STEPS} steps"
        return None
    return [_step(session, settings, s, i, errors) for i, s in enumerate(v)]


PARSERS = {"name": _name, "list": _list, "trigger": _trigger, "exit": _exit, "reentry": _reentry,
           "include_imported": _flag("include_imported"), "track_opens": _flag("track_opens"),
           "track_clicks": _flag("track_clicks")}


def parse(session: Session, settings: Settings, data: Any, *, partial: bool) -> dict[str, Any]:
    """The journey fields in `data`; every bad field named in one Invalid."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors = _Errors({k: f"unknown field; expected any of {', '.join(FIELDS)}" for k in sorted(set(data) - set(FIELDS))})
    out: dict[str, Any] = {}
    for name, fn in PARSERS.items():
        if name in data:
            out[name] = errors.check(name, fn, data[name])
    if "steps" in data:
        out["steps"] = _steps(session, settings, data["steps"], errors)
    if not partial:
        errors.update({k: "is required" for k in ("name", "trigger", "steps") if k not in data and k not in errors})
    if not errors and out.get("steps"):
        _render_check(session, settings, out["steps"], out.get("list", "newsletter"), errors)
    if errors:
        raise Invalid("invalid journey: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=dict(errors))
    return out


def _render_check(session: Session, settings: Settings, steps: list[dict[str, Any]], list_key: str,
                  errors: _Errors) -> None:
    for i, step in enumerate(steps):
        probe = Campaign(id=0, kind=CampaignKind.journey, name="check", list=list_key, **_content(step))
        errors.check(f"steps[{i}].template", check_renders, session, settings, probe)


def _content(step: dict[str, Any]) -> dict[str, Any]:
    return {k: step.get(k) for k in ("subject", "body_html", "body_text")} | {
        "translations": step.get("translations") or {}, "template": step.get("template") or "campaign"}


# --- reading --------------------------------------------------------------------------------------


def get(session: Session, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None:
        raise NotFound(f"no journey {journey_id}")
    return journey


def steps_of(session: Session, journey_id: int) -> list[JourneyStep]:
    return list(session.scalars(select(JourneyStep).where(JourneyStep.journey_id == journey_id,
                                                          JourneyStep.removed.is_(False))
                                .order_by(JourneyStep.position)))


def as_dict(session: Session, j: Journey) -> dict[str, Any]:
    steps = [{"position": s.position, "wait": s.wait, "subject": s.subject, "body_html": s.body_html,
              "body_text": s.body_text, "translations": s.translations, "template": s.template,
              "segment": s.segment} for s in steps_of(session, j.id or 0)]
    return {"id": j.id, "key": j.key, "name": j.name, "list": j.list, "trigger": j.trigger, "steps": steps,
            "exit": j.exit, "reentry": j.reentry, "include_imported": j.include_imported,
            "track_opens": j.track_opens, "track_clicks": j.track_clicks, "state": j.state,
            "activated_at": iso(j.activated_at), "created_by": j.created_by, "created_at": iso(j.created_at),
            "updated_at": iso(j.updated_at)}


def list_journeys(session: Session, after_id: int | None, limit: int, state: str | None = None
                  ) -> tuple[list[Journey], bool]:
    stmt = select(Journey)
    if state:
        stmt = stmt.where(Journey.state == state)
    return keyset_page(session, stmt, Journey.id, after_id, limit)


# --- writing --------------------------------------------------------------------------------------


def create(session: Session, settings: Settings, data: Any, actor: str | None, key: str | None = None) -> Journey:
    fields = parse(session, settings, data, partial=False)
    steps = fields.pop("steps")
    now = utcnow()
    journey = Journey(key=key, created_by=actor, created_at=now, updated_at=now, **fields)
    session.add(journey)
    session.flush()
    _save_steps(session, journey, steps)
    return journey


def change(session: Session, settings: Settings, journey_id: int, data: Any) -> Journey:
    journey = get(session, journey_id)
    fields = parse(session, settings, {"list": journey.list, **data} if isinstance(data, dict) else data,
                   partial=True)
    steps = fields.pop("steps", None)
    for key, value in fields.items():
        setattr(journey, key, value)
    journey.updated_at = utcnow()
    session.add(journey)
    session.flush()
    if steps is not None:
        _save_steps(session, journey, steps)
    _sync_campaigns(session, journey)
    return journey


def _save_steps(session: Session, journey: Journey, steps: list[dict[str, Any]]) -> None:
    """Overwrite steps by position; positions past the new end are marked removed (their stats stay)."""
    existing = {s.position: s for s in session.scalars(select(JourneyStep).where(JourneyStep.journey_id == journey.id))}
    for position, step in enumerate(steps):
        row = existing.get(position) or JourneyStep(journey_id=journey.id or 0, position=position, subject="")
        for key in ("wait", "wait_minutes", "subject", "body_html", "body_text", "translations", "template",
                    "segment"):
            setattr(row, key, step.get(key))
        row.translations = row.translations or {}
        row.template = row.template or "campaign"
        row.removed = False
        session.add(row)
    for position, row in existing.items():
        if position >= len(steps):
            row.removed = True
            session.add(row)
    session.flush()


def _sync_campaigns(session: Session, journey: Journey) -> None:
    """The hidden campaigns carry each step's current content: queued deliveries get the edited step."""
    rows = session.execute(select(JourneyCampaign.campaign_id, JourneyStep)
                           .join(JourneyStep, JourneyStep.id == JourneyCampaign.step_id)
                           .where(JourneyCampaign.journey_id == journey.id)).all()
    for campaign_id, step in rows:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
            list=journey.list, track_opens=journey.track_opens, track_clicks=journey.track_clicks,
            updated_at=utcnow(), **_content(step.__dict__)))


def delete_journey(session: Session, journey_id: int) -> None:
    """Delete a journey: its queued mail is cancelled; what was sent stays in the deliveries."""
    get(session, journey_id)
    ids = select(JourneyCampaign.campaign_id).where(JourneyCampaign.journey_id == journey_id).scalar_subquery()
    session.execute(update(Delivery).where(Delivery.campaign_id.in_(ids), Delivery.status == DeliveryStatus.queued)
                    .values(status=DeliveryStatus.cancelled))
    session.execute(update(Campaign).where(Campaign.id.in_(ids)).values(state=CampaignState.cancelled,
                                                                         finished_at=utcnow()))
    session.execute(delete(Journey).where(Journey.id == journey_id))


# --- lifecycle ------------------------------------------------------------------------------------


def activate(session: Session, settings: Settings, journey_id: int) -> Journey:
    """Only an active journey enrols and sends. The first activation reads events from now on."""
    from crm.journeys import stepping

    journey = get(session, journey_id)
    if journey.state == JourneyState.active:
        return journey
    if not steps_of(session, journey_id):
        raise Conflict("a journey needs at least one step to be activated", fields={"steps": "empty"})
    values: dict[str, Any] = {"state": JourneyState.active, "updated_at": utcnow()}
    if journey.activated_at is None:
        values["activated_at"] = utcnow()
        values["event_cursor"] = session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0
    session.execute(update(Journey).where(Journey.id == journey_id).values(**values))
    session.expire_all()
    stepping.reconcile(session, settings, get(session, journey_id))
    return get(session, journey_id)


def pause(session: Session, settings: Settings, journey_id: int) -> Journey:
    """Hold everyone where they are: the steps' campaigns pause at once (a sender stops within a message)."""
    from crm.journeys import stepping

    journey = get(session, journey_id)
    if journey.state == JourneyState.draft:
        raise Conflict("cannot pause a journey that is draft (only an active one)", fields={"state": journey.state})
    session.execute(update(Journey).where(Journey.id == journey_id)
                    .values(state=JourneyState.paused, updated_at=utcnow()))
    session.expire_all()
    stepping.reconcile(session, settings, get(session, journey_id))
    return get(session, journey_id)


def wake(session: Session, campaign_id: int) -> None:
    lifecycle.kick(session, campaign_id)
