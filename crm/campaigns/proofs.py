"""Proofs: a campaign rendered for someone other than its audience.

The render check on save and at launch uses a sample person; a test send goes to listed staff
addresses only, subject marked [TEST], and records no delivery.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crm.campaigns import pipeline
from crm.campaigns.compose import Person
from crm.campaigns.lifecycle import get
from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.contacts import service as contacts
from crm.contacts.models import Contact, ContactStatus
from crm.errors import Invalid, NotFound
from crm.links import SAMPLE_CONTACT_ID
from crm.mail import Sender, make_sender, new_message_id
from crm.mail.sandbox import bounded_render
from crm.staff.models import Staff
from crm.staff.service import audit


def sample_person(email: str = "sample@example.org", language: str = "en") -> Person:
    # SAMPLE_CONTACT_ID names no row: its signed links land on the "this came from a test email" page.
    return Person(contact_id=SAMPLE_CONTACT_ID, delivery_id=0, email=email, first_name="Alex", last_name="Sample",
                  language=language, role="supporter", items=[])


def check_renders(session: Session, settings: Settings, campaign: Campaign) -> None:
    """A campaign that could only fail every delivery is refused when saved and again at launch.

    The render runs under the sandbox's deadline, so `{{ 7 ** 10000000 }}` or a huge loop in a
    body is a 400 naming why, not a stalled request.
    """
    sender = pipeline.CampaignSender(settings, session, campaign)
    for lang in sender.versions:
        try:
            bounded_render(lambda lang=lang: sender.message(sample_person(language=lang)), "template")
        except Invalid as exc:
            raise Invalid.field("template", f"the {lang} version does not render: {exc.fields['template']}"
                                ) from None
        except Exception as exc:  # noqa: BLE001 - any render failure is the template's fault
            raise Invalid.field("template", f"the {lang} version does not render: {exc}") from None


def _test_recipients(session: Session, data: dict[str, Any]) -> tuple[str, list[str]]:
    """The listed addresses, each an active staff member's and none suppressed (SPEC 5)."""
    field = "to" if "to" in data and "emails" not in data else "emails"
    raw = data.get(field)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise Invalid.field(field, "must be a non-empty list of staff addresses")
    if len(raw) > 20:
        raise Invalid.field(field, "at most 20 addresses")
    addresses = list(dict.fromkeys(contacts.normalize_email(e, field).email for e in raw))
    keys = {a.lower() for a in addresses}
    staff = set(session.scalars(select(func.lower(Staff.email))
                                .where(func.lower(Staff.email).in_(keys), Staff.active.is_(True))))
    bad = [f"{a} is not a staff address" for a in addresses if a.lower() not in staff]
    bad += [f"{a} is suppressed ({reason})" for a in addresses
            if a.lower() in staff and (reason := contacts.suppression_reason(session, a.lower()))]
    if bad:
        raise Invalid(f"{field}: {'; '.join(bad)}", fields={field: "; ".join(bad)})
    return field, addresses


def _test_person(session: Session, data: dict[str, Any], address: str) -> Person:
    """The chosen contact (their own name and their real links, as they would get it) or the sample."""
    contact_id = data.get("contact_id")
    if contact_id is None:
        return sample_person(address)
    if isinstance(contact_id, bool) or not isinstance(contact_id, int) or not 0 < contact_id <= 2**31 - 1:
        raise Invalid.field("contact_id", "must be a contact id")
    contact = session.get(Contact, contact_id)
    if contact is None or contact.status == ContactStatus.erased:
        raise NotFound(f"no contact {contact_id}", fields={"contact_id": f"no contact {contact_id}"})
    return Person(contact_id=contact_id, delivery_id=0, email=address, first_name=contact.first_name,
                  last_name=contact.last_name, language=contact.language, role=contact.role, items=[])


def send_test(session: Session, settings: Settings, campaign_id: int, data: Any, sender: Sender | None = None,
              staff_email: str | None = None) -> dict[str, Any]:
    """Send the campaign to listed staff addresses only, subject marked [TEST]; no delivery is recorded."""
    if not isinstance(data, dict):
        raise Invalid.field("emails", "must be a non-empty list of staff addresses")
    campaign = get(session, campaign_id)
    _field, addresses = _test_recipients(session, data)
    persons = [_test_person(session, data, a) for a in addresses]
    if data.get("contact_id") is not None and staff_email:
        # Rendering a named person's email is a look at their data, like any preview.
        audit(session, staff_email, "campaign.test", f"contact:{data['contact_id']}", rows=1,
              detail={"campaign_id": campaign_id, "to": addresses})
    prepared = pipeline.CampaignSender(settings, session, campaign)
    out = sender or make_sender(settings)
    try:
        for person in persons:
            links = prepared.links.person(person.contact_id)
            rendered = prepared.renderer(person.language).render(person, links)
            rendered.subject = f"[TEST] {rendered.subject}"
            mid = new_message_id(settings)
            headers = {"List-Unsubscribe": f"<{links['unsubscribe']}>", "X-CRM-Campaign": f"{campaign_id} test"}
            out.send_raw(prepared.builder.envelope_from, person.email,  # type: ignore[attr-defined]
                         prepared.builder.build(person.email, rendered, mid, headers), mid)
    finally:
        if sender is None:
            out.close()
    return {"sent": len(addresses), "emails": addresses, "contact_id": data.get("contact_id")}
