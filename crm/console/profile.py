"""A contact's profile page: everything staff may see about one person, each part bounded.

Details, subscriptions, interests, tags, the consent trail, deliveries with opens and clicks, the
volunteer profile and its history, donation inquiries and form submissions. Each list shows the
newest rows up to a limit; the data-subject export has the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.models import Campaign, Delivery
from crm.contacts import service as contacts
from crm.contacts import staff_service
from crm.contacts.models import ConsentEvent, Interest, Subscription
from crm.contacts.roles import is_role_address
from crm.contacts.schemas import ContactPublic, contact_public
from crm.donations.models import DonationInquiry
from crm.forms.models import FormSubmission
from crm.journeys.stats import of_contact as journey_runs
from crm.volunteers import service as volunteers
from crm.volunteers.models import Volunteer, VolunteerEvent

JOURNEYS_SHOWN = 20
CONSENT_SHOWN = 200
DELIVERIES_SHOWN = 100
SUBMISSIONS_SHOWN = 50
INQUIRIES_SHOWN = 50


@dataclass(frozen=True)
class VolunteerView:
    volunteer: Volunteer
    areas: list[str]
    availability: list[str]
    history: list[VolunteerEvent]


@dataclass(frozen=True)
class Profile:
    contact: ContactPublic
    interest_labels: list[str]
    consent: list[ConsentEvent]
    subscriptions: list[Subscription] = field(default_factory=list)
    deliveries: list[tuple[Delivery, str]] = field(default_factory=list)  # (delivery, campaign name)
    volunteer: VolunteerView | None = None
    inquiries: list[DonationInquiry] = field(default_factory=list)
    submissions: list[FormSubmission] = field(default_factory=list)
    suppressed: str | None = None
    role_address: bool = False  # info@, admin@, ...: a team's inbox, not a person (SPEC 14)
    journeys: list[dict[str, Any]] = field(default_factory=list)  # the person's runs, newest first


def _newest(session: Session, model: Any, contact_id: int, limit: int) -> list[Any]:
    return list(session.scalars(select(model).where(model.contact_id == contact_id)
                                .order_by(model.id.desc()).limit(limit)))


def _volunteer(session: Session, contact_id: int) -> VolunteerView | None:
    vol = session.scalars(select(Volunteer).where(Volunteer.contact_id == contact_id)).first()
    if vol is None or vol.id is None:
        return None
    history = list(session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vol.id)
                                   .order_by(VolunteerEvent.id.desc()).limit(CONSENT_SHOWN)))  # type: ignore[union-attr]
    return VolunteerView(vol, volunteers.areas_of(session, vol.id), volunteers.availability_of(session, vol.id),
                         history)


def load(session: Session, contact_id: int) -> Profile:
    row = staff_service.get_contact(session, contact_id)
    contact = contact_public(session, row)
    labels = dict(session.execute(select(Interest.key, Interest.label)).tuples().all())
    deliveries = list(session.execute(
        select(Delivery, Campaign.name).join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.contact_id == contact_id).order_by(Delivery.id.desc()).limit(DELIVERIES_SHOWN)).tuples())  # type: ignore[union-attr]
    return Profile(
        contact=contact, interest_labels=[labels.get(k, k) for k in contact.interests],
        consent=_newest(session, ConsentEvent, contact_id, CONSENT_SHOWN),
        subscriptions=sorted(contacts.subscriptions_of(session, contact_id).values(), key=lambda s: s.list),
        deliveries=deliveries, volunteer=_volunteer(session, contact_id),
        inquiries=_newest(session, DonationInquiry, contact_id, INQUIRIES_SHOWN),
        submissions=_newest(session, FormSubmission, contact_id, SUBMISSIONS_SHOWN),
        suppressed=contacts.suppression_reason(session, row.email_key) if row.email_key else None,
        role_address=bool(row.email) and is_role_address(row.email or ""),
        journeys=journey_runs(session, contact_id)[:JOURNEYS_SHOWN],
    )


def interest_choices(session: Session) -> list[tuple[str, str]]:
    return list(session.execute(select(Interest.key, Interest.label).order_by(Interest.position, Interest.key))
                .tuples().all())
