"""Volunteer invitations: an opportunity's matches mailed through the campaign pipeline, and their answer.

Inviting is one INSERT ... SELECT of the matches (crm.volunteers.opportunities) into a campaign's
deliveries, which never mails the same volunteer twice for one opportunity; the "I'm interested"
link records one response per volunteer and opportunity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlmodel import Session

from crm.campaigns import lifecycle
from crm.campaigns.compose import Person
from crm.campaigns.models import Campaign, CampaignKind, CampaignState, Delivery, DeliveryStatus
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus, ListKey
from crm.db import insert_ignore, is_postgres, today, utcnow
from crm.errors import Conflict
from crm.links import SAMPLE_CONTACT_ID, url_for
from crm.mail import LANGUAGES
from crm.tokens import TokenError, read_token
from crm.volunteers import opportunities
from crm.volunteers.models import Opportunity, OpportunityResponse, Volunteer

INVITE_TEMPLATE = "opportunity-invite"


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
            "schedule": opp.schedule, "postal_code": opp.postal_code, "dates": when,
            # ISO, for templates to show in the reader's language (`|date`, crm.mail.wording)
            "starts_on": opp.starts_on.isoformat() if opp.starts_on else "",
            "ends_on": opp.ends_on.isoformat() if opp.ends_on else ""}


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



def _uninvited(settings: Settings, opp: Opportunity) -> Any:
    """The mailable matches never invited to this opportunity: whom a notify would email now."""
    earlier = (select(Delivery.id).join(Campaign, Campaign.id == Delivery.campaign_id)
               .where(Campaign.kind == CampaignKind.opportunity, Campaign.opportunity_id == opp.id,
                      Delivery.contact_id == Contact.id))
    return (opportunities.matches_query(settings, opp)
            .where(contacts.mailable_audience(ListKey.volunteer_updates), ~earlier.exists()))


def would_invite(session: Session, settings: Settings, opportunity_id: int) -> int:
    """How many a notify would email now (the console's confirmation names it before sending)."""
    stmt = _uninvited(settings, opportunities.get(session, opportunity_id)).with_only_columns(Contact.id)
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def notify(session: Session, settings: Settings, opportunity_id: int, actor: str) -> NotifyResult:
    """Invite every mailable match through the campaign pipeline, each volunteer once per opportunity.

    One campaign per call carries the invitations of volunteers never invited to this opportunity
    (INSERT ... SELECT over the match query, through the mailing gate); a repeat call finds nobody
    new and creates nothing. The opportunity row is locked so two notifies at once queue nobody twice.
    """
    opp = opportunities.get(session, opportunity_id)
    assert opp.id is not None
    if opp.ends_on is not None and opp.ends_on < today(settings):
        raise Conflict(f"opportunity {opp.id} ended on {opp.ends_on.isoformat()}; nobody is invited to it now",
                       fields={"ends_on": "in the past"})
    if is_postgres(session):
        session.execute(select(Opportunity.id).where(Opportunity.id == opp.id).with_for_update())
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
    recipients = (_uninvited(settings, opp)
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
    lifecycle.start_sending(session, campaign.id)
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
    if claims.contact_id == SAMPLE_CONTACT_ID:
        raise LinkProblem("sample")  # from a test email: nobody's interest to record
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
