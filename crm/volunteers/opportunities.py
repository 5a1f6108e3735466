"""Opportunities: what staff need volunteers for, who matches, who said "I'm interested".

Matching is one SQL query. Inviting the matches is campaigns' work (crm.campaigns.invitations).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlmodel import Session

from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus
from crm.db import keyset_page, today, utcnow
from crm.errors import Invalid, NotFound
from crm.volunteers.models import (
    Opportunity,
    OpportunityResponse,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
    VolunteerStatus,
)
from crm.volunteers.service import AREAS, AVAILABILITY, parse_date

FIELDS = ("title", "area", "description", "postal_code", "needed", "schedule", "starts_on", "ends_on",
          "availability")
REQUIRED = ("title", "area", "postal_code")


# --- create and change ------------------------------------------------------------------------


def _text(data: dict[str, Any], name: str, max_length: int, *, single_line: bool = True) -> str:
    return contacts.clean_text(data.get(name), name, max_length=max_length, single_line=single_line)


def parse_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    """Validate a POST (partial=False) or PATCH body; every bad field is named at once."""
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    for name in unknown:
        errors[name] = f"unknown field; expected any of {', '.join(FIELDS)}"
    out: dict[str, Any] = {}
    limits = {"title": 200, "description": 5000, "postal_code": 20, "schedule": 500}
    for name in FIELDS:
        if name not in data:
            continue
        value = data[name]
        try:
            if name in limits:
                out[name] = _text(data, name, limits[name], single_line=name != "description")
            elif name == "area":
                if value not in AREAS:
                    raise Invalid.field(name, f"unknown area {value!r}; expected one of {', '.join(AREAS)}")
                out[name] = value
            elif name == "availability":
                if value not in (None, "") and value not in AVAILABILITY:
                    raise Invalid.field(name, f"unknown availability {value!r}; expected one of "
                                              f"{', '.join(AVAILABILITY)} (or null for any)")
                out[name] = value or None
            elif name == "needed":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
                    raise Invalid.field(name, "must be a whole number from 1 to 10000")
                out[name] = value
            else:
                out[name] = parse_date(value, name)
        except Invalid as exc:
            errors.update(exc.fields)
    for name in REQUIRED:
        if (not partial or name in data) and not out.get(name) and name not in errors:
            errors[name] = "is required"
    starts, ends = out.get("starts_on"), out.get("ends_on")
    if starts and ends and ends < starts and "ends_on" not in errors:
        errors["ends_on"] = "must not be before starts_on"
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


def create(session: Session, data: Any, actor: str) -> Opportunity:
    fields = parse_fields(data, partial=False)
    now = utcnow()
    opp = Opportunity(**fields, created_by=actor, created_at=now, updated_at=now)
    session.add(opp)
    session.flush()
    return opp


def get(session: Session, opportunity_id: int) -> Opportunity:
    opp = session.get(Opportunity, opportunity_id)
    if opp is None:
        raise NotFound(f"no opportunity {opportunity_id}")
    return opp


def update(session: Session, opportunity_id: int, data: Any) -> Opportunity:
    opp = get(session, opportunity_id)
    fields = parse_fields(data, partial=True)
    starts = fields.get("starts_on", opp.starts_on)
    ends = fields.get("ends_on", opp.ends_on)
    if starts and ends and ends < starts:
        raise Invalid.field("ends_on", "must not be before starts_on")
    for key, value in fields.items():
        setattr(opp, key, value)
    opp.updated_at = utcnow()
    session.add(opp)
    session.flush()
    return opp


def search(session: Session, area: str | None, after_id: int | None, limit: int) -> tuple[list[Opportunity], bool]:
    stmt = select(Opportunity)
    if area:
        stmt = stmt.where(Opportunity.area == area)
    return keyset_page(session, stmt, Opportunity.id, after_id, limit)


def responses(session: Session, opportunity_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OpportunityResponse, Volunteer, Contact)
        .join(Volunteer, Volunteer.id == OpportunityResponse.volunteer_id)
        .join(Contact, Contact.id == Volunteer.contact_id)
        .where(OpportunityResponse.opportunity_id == opportunity_id)
        .order_by(OpportunityResponse.responded_at, OpportunityResponse.id)
    ).tuples()
    return [{"volunteer_id": v.id, "contact_id": c.id, "first_name": c.first_name, "last_name": c.last_name,
             "email": c.email, "phone": c.phone, "responded_at": r.responded_at.isoformat()} for r, v, c in rows]


def opportunity_dict(opp: Opportunity, response_list: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": opp.id, "title": opp.title, "area": opp.area, "description": opp.description,
        "postal_code": opp.postal_code, "needed": opp.needed, "schedule": opp.schedule,
        "availability": opp.availability,
        "starts_on": opp.starts_on.isoformat() if opp.starts_on else None,
        "ends_on": opp.ends_on.isoformat() if opp.ends_on else None,
        "created_by": opp.created_by, "created_at": opp.created_at.isoformat(),
        "updated_at": opp.updated_at.isoformat(),
    }
    if response_list is not None:
        out["responses"] = response_list
        out["response_count"] = len(response_list)
    return out


# --- matching ---------------------------------------------------------------------------------


def match_condition(opp: Opportunity, prefix_length: int, today: dt.date) -> ColumnElement[bool]:
    """Who fits: active and not paused, the opportunity's area, its availability if it names one,
    and a postal code sharing the configured prefix (case and spaces ignored: "sw1a" is "SW1A")."""
    prefix = "".join(opp.postal_code.split()).upper()[:prefix_length]
    volunteer_code = func.upper(func.replace(Volunteer.postal_code, " ", ""))
    conditions = [
        Volunteer.status == VolunteerStatus.active,
        or_(Volunteer.paused_until.is_(None), Volunteer.paused_until < today),
        exists().where(VolunteerArea.volunteer_id == Volunteer.id, VolunteerArea.area == opp.area),
        Contact.status != ContactStatus.erased,
        func.substr(volunteer_code, 1, len(prefix)) == prefix,
    ]
    if opp.availability:
        conditions.append(exists().where(VolunteerAvailability.volunteer_id == Volunteer.id,
                                         VolunteerAvailability.slot == opp.availability))
    return and_(*conditions)


def matches_query(settings: Settings, opp: Opportunity) -> Select[tuple[Volunteer, Contact]]:
    return (select(Volunteer, Contact).join(Contact, Contact.id == Volunteer.contact_id)
            .where(match_condition(opp, settings.match_postal_prefix, today(settings))))


def matches(session: Session, settings: Settings, opportunity_id: int, after_id: int | None, limit: int
            ) -> tuple[list[tuple[Volunteer, Contact]], bool]:
    stmt = matches_query(settings, get(session, opportunity_id))
    return keyset_page(session, stmt, Volunteer.id, after_id, limit, tuples=True)


# --- notify -----------------------------------------------------------------------------------
