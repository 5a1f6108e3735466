"""Opportunities: what staff need volunteers for, who matches, who said "I'm interested".

Matching is one SQL query; inviting the matches is one INSERT ... SELECT into the campaign
pipeline's deliveries, which never mails the same volunteer twice for one opportunity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, insert, literal, or_, select
from sqlmodel import Session

from crm.campaigns.compose import Person
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.campaigns.pipeline import register_context_extras, start_sending
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus, ListKey
from crm.db import insert_ignore, is_postgres, keyset_page, utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.links import url_for
from crm.mail import LANGUAGES
from crm.tokens import TokenError, read_token
from crm.volunteers.models import (
    Opportunity,
    OpportunityResponse,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
    VolunteerStatus,
)
from crm.volunteers.service import AREAS, AVAILABILITY, parse_date

INVITE_TEMPLATE = "opportunity-invite"
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
            .where(match_condition(opp, settings.match_postal_prefix, utcnow().date())))


def matches(session: Session, settings: Settings, opportunity_id: int, after_id: int | None, limit: int
            ) -> tuple[list[tuple[Volunteer, Contact]], bool]:
    stmt = matches_query(settings, get(session, opportunity_id))
    return keyset_page(session, stmt, Volunteer.id, after_id, limit, tuples=True)


# --- notify -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyResult:
    opportunity_id: int
    queued: int  # invitations added by this call (0 on a repeat)
    campaign_id: int | None  # the campaign carrying them (None when nobody new matched)

    def as_dict(self) -> dict[str, Any]:
        return {"opportunity_id": self.opportunity_id, "campaign_id": self.campaign_id, "queued": self.queued}


def respond_url(settings: Settings, contact_id: int, opportunity_id: int) -> str:
    return url_for(settings, contact_id, "respond", extra=str(opportunity_id))


def invite_fields(opp: Opportunity) -> dict[str, Any]:
    """What the invitation and the response page show of an opportunity (the same for everyone)."""
    when = ""
    if opp.starts_on:
        when = opp.starts_on.isoformat() + (f" – {opp.ends_on.isoformat()}" if opp.ends_on else "")
    return {"id": opp.id, "title": opp.title, "area": opp.area, "description": opp.description,
            "schedule": opp.schedule, "postal_code": opp.postal_code, "dates": when}


def invite_extras(session: Session, settings: Settings, campaign: Campaign) -> Callable[[Person], dict[str, str]]:
    """The campaign pipeline's per-recipient hook: the "I'm interested" link and the opportunity's text.

    Templates see them as `extra.*` (and `links.respond`); the pipeline escapes them in HTML.
    """
    opp = session.get(Opportunity, campaign.opportunity_id) if campaign.opportunity_id else None
    shown = {f"opportunity_{k}": str(v) for k, v in invite_fields(opp).items() if k != "id"} if opp else {}

    def extras(person: Person) -> dict[str, str]:
        if opp is None or opp.id is None:
            return {"respond": settings.public_base_url, **shown}
        return {"respond": respond_url(settings, person.contact_id, opp.id), **shown}

    return extras


register_context_extras(CampaignKind.opportunity, invite_extras)


def notify(session: Session, settings: Settings, opportunity_id: int, actor: str) -> NotifyResult:
    """Invite every mailable match through the campaign pipeline, each volunteer once per opportunity.

    One campaign per call carries the invitations of volunteers never invited to this opportunity
    (INSERT ... SELECT over the match query, through the mailing gate); a repeat call finds nobody
    new and creates nothing. The opportunity row is locked so two notifies at once queue nobody twice.
    """
    opp = get(session, opportunity_id)
    assert opp.id is not None
    if opp.ends_on is not None and opp.ends_on < utcnow().date():
        raise Conflict(f"opportunity {opp.id} ended on {opp.ends_on.isoformat()}; nobody is invited to it now",
                       fields={"ends_on": "in the past"})
    if is_postgres(session):
        session.execute(select(Opportunity.id).where(Opportunity.id == opp.id).with_for_update())
    earlier = (select(Delivery.id).join(Campaign, Campaign.id == Delivery.campaign_id)
               .where(Campaign.kind == CampaignKind.opportunity, Campaign.opportunity_id == opp.id,
                      Delivery.contact_id == Contact.id))
    now = utcnow()
    campaign = Campaign(kind=CampaignKind.opportunity, name=f"Opportunity #{opp.id}: {opp.title}"[:200],
                        # The subject comes from the template files: a staff subject would be compiled as
                        # a Jinja template, and an opportunity's title is text, not a template.
                        subject="", translations={lang: {} for lang in LANGUAGES if lang != "en"},
                        list=ListKey.volunteer_updates,
                        template=INVITE_TEMPLATE, opportunity_id=opp.id, state=CampaignState.draft,
                        created_by=actor, created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    recipients = (matches_query(settings, opp)
                  .where(contacts.mailable(ListKey.volunteer_updates), ~earlier.exists())
                  .with_only_columns(literal(campaign.id), Contact.id, literal(DeliveryStatus.queued.value),
                                     literal(0)))
    # Counted from RETURNING: psycopg reports rowcount -1 for this statement under SQLAlchemy 2.1.
    added = len(session.execute(insert(Delivery).from_select(
        ["campaign_id", "contact_id", "status", "attempts"], recipients).returning(Delivery.id)).all())
    if not added:
        session.delete(campaign)
        session.flush()
        return NotifyResult(opp.id, 0, None)
    assert campaign.id is not None
    start_sending(session, campaign.id, settings)
    return NotifyResult(opp.id, added, campaign.id)


# --- the "I'm interested" link ----------------------------------------------------------------


class LinkProblem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invitation:
    opportunity: Opportunity
    volunteer: Volunteer
    contact: Contact
    responded: bool


def invitation_from_token(session: Session, settings: Settings, token: str) -> Invitation:
    try:
        claims = read_token(settings.verification_secrets(), token, "respond")
        opportunity_id = int(claims.extra)
    except TokenError as exc:
        raise LinkProblem(exc.reason) from None
    except ValueError:
        raise LinkProblem("malformed") from None
    contact = session.get(Contact, claims.contact_id)
    opp = session.get(Opportunity, opportunity_id)
    vol = session.scalars(select(Volunteer).where(Volunteer.contact_id == claims.contact_id)).first()
    if contact is None or contact.status == ContactStatus.erased or opp is None or vol is None:
        raise LinkProblem("unknown")
    responded = session.scalar(select(OpportunityResponse.id).where(
        OpportunityResponse.opportunity_id == opp.id, OpportunityResponse.volunteer_id == vol.id)) is not None
    return Invitation(opp, vol, contact, responded)


def respond(session: Session, settings: Settings, token: str) -> Invitation:
    """Record "I'm interested" once; a second click (or a double submit) changes nothing."""
    inv = invitation_from_token(session, settings, token)
    if not inv.responded:
        insert_ignore(session, OpportunityResponse,
                      {"opportunity_id": inv.opportunity.id, "volunteer_id": inv.volunteer.id,
                       "responded_at": utcnow()}, ["opportunity_id", "volunteer_id"])
    return Invitation(inv.opportunity, inv.volunteer, inv.contact, True)
