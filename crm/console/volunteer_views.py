"""What the volunteer pages show: labels, people-friendly dates, the pipeline list and one volunteer.

Reads through the volunteers domain's own functions; the few extra queries here are set queries
over a page of rows (areas of 50 volunteers in one go), never one query per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignKind, Delivery
from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import today
from crm.errors import Invalid
from crm.outbox.models import OutboxMessage
from crm.volunteers import hours as hours_service
from crm.volunteers import qualifications as quals
from crm.volunteers import service
from crm.volunteers.models import (
    Opportunity,
    Shift,
    ShiftSignup,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
    VolunteerEvent,
    VolunteerHours,
    VolunteerQualification,
)

STATUS_LABELS = {"interested": "Interested", "contacted": "Contacted", "onboarding": "Onboarding",
                 "active": "Active", "paused": "Paused", "inactive": "Inactive"}
AREA_LABELS = {"transport-to-treatment": "Driving patients to treatment", "lodging-support": "Lodging support",
               "events": "Events", "peer-support": "Peer support", "office": "Office help",
               "advocacy": "Advocacy", "fundraising": "Fundraising"}
AVAILABILITY_LABELS = {"weekday-daytime": "Weekdays, daytime", "weekday-evenings": "Weekday evenings",
                       "weekends": "Weekends"}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
SIGNUP_LABELS = {"confirmed": "Confirmed", "waitlisted": "Waitlisted", "offered": "Offered a place",
                 "cancelled": "Cancelled", "completed": "Attended", "no_show": "Did not come",
                 "offer_lapsed": "Offer lapsed"}
HOURS_LABELS = {"pending": "Waiting for approval", "approved": "Approved", "rejected": "Rejected"}
EMAIL_LABELS = {"volunteer-welcome": "Welcome to volunteering", "volunteer-status": "Status update",
                "shift-reminder": "Shift reminder", "shift-offer": "A place on a shift offered",
                "shift-cancelled": "Shift cancelled", "shift-changed": "Shift changed",
                "qualification-expiring": "Qualification expiring", "confirm": "Confirm subscription",
                "welcome": "Newsletter welcome", "opportunity-invite": "Invitation to an opportunity",
                "campaign": "Campaign"}
DELIVERY_LABELS = {"queued": "Queued", "sending": "Sending", "sent": "Sent", "pending": "Queued",
                   "failed": "Failed", "bounced": "Bounced", "skipped": "Not sent", "cancelled": "Cancelled"}
# Moves that carry an email offer it on the form; the rest would be refused by the service.
EMAIL_MOVES = tuple(str(s) for s in service.EMAIL_STATUSES)
CONTACTED = {"": "Any time", "never": "Never contacted", "30": "In the last 30 days",
             "over30": "Not in the last 30 days"}
DONE = {"moved": "Status changed.", "note": "Note added.", "paused": "Pause saved.",
        "qualification": "Qualification recorded.", "qualification-removed": "Qualification removed.",
        "hours": "Hours logged.", "created": "Opportunity created.", "saved": "Opportunity saved.",
        "shift": "Shift added.", "signed-up": "Signed up.", "waitlisted": "The shift is full: put on the waitlist.",
        "attendance": "Attendance saved.", "cancelled": "Sign-up cancelled."}
HISTORY_SHOWN = 200
BOARD_COLUMN = 25


class Clock:
    """Dates and times for people, in CRM_TIMEZONE: "Wed 2 Dec 2026, 14:00"."""

    def __init__(self, settings: Settings) -> None:
        self.tz = ZoneInfo(settings.timezone)

    def when(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(self.tz)
        return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"

    def iso(self, text: str | None) -> str:
        """An ISO time string from a domain dict, shown like `when`."""
        return self.when(dt.datetime.fromisoformat(text)) if text else ""

    def time(self, moment: dt.datetime) -> str:
        return f"{moment.astimezone(self.tz):%H:%M}"

    @staticmethod
    def day(value: dt.date | None) -> str:
        return f"{value:%a} {value.day} {value:%b %Y}" if value else ""

    def local_date(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.tz).date()


def labels() -> dict[str, Any]:
    """Every label map, for templates."""
    return {"STATUS": STATUS_LABELS, "AREA": AREA_LABELS, "AVAILABILITY": AVAILABILITY_LABELS,
            "LANGUAGE": LANGUAGE_LABELS, "SIGNUP": SIGNUP_LABELS, "HOURS": HOURS_LABELS, "EMAIL": EMAIL_LABELS,
            "DELIVERY": DELIVERY_LABELS, "CONTACTED": CONTACTED}


def name_of(contact: Contact) -> str:
    return " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.email or "No name"


# --- the pipeline list ------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """The list's filters as the form sent them; unknown choices are dropped, not errors."""

    status: str = ""
    area: str = ""
    availability: str = ""
    postal_code: str = ""
    language: str = ""
    contacted: str = ""
    view: str = ""  # "board" for columns by status; the list otherwise

    @classmethod
    def of(cls, raw: dict[str, str | None]) -> ListQuery:
        def pick(name: str, allowed: Any) -> str:
            value = (raw.get(name) or "").strip()
            return value if value in allowed else ""
        return cls(status=pick("status", STATUS_LABELS), area=pick("area", AREA_LABELS),
                   availability=pick("availability", AVAILABILITY_LABELS),
                   postal_code=(raw.get("postal_code") or "").strip()[:20], language=pick("language", LANGUAGE_LABELS),
                   contacted=pick("contacted", CONTACTED), view=pick("view", ("board",)))

    def filters(self, settings: Settings) -> service.VolunteerFilters:
        month_ago = today(settings) - dt.timedelta(days=30)
        return service.VolunteerFilters(
            area=self.area or None, availability=self.availability or None, status=self.status or None,
            postal_code=self.postal_code or None, language=self.language or None,
            contacted_after=month_ago if self.contacted == "30" else None,
            contacted_before=month_ago if self.contacted == "over30" else None,
            never_contacted=True if self.contacted == "never" else None)

    def params(self, **override: str) -> dict[str, str]:
        """The query string of this search with some values changed (the count links, paging)."""
        values = {**self.__dict__, **override}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Row:
    volunteer: Volunteer
    contact: Contact
    name: str
    areas: list[str]
    availability: list[str]


def choices_of(session: Session, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Areas and availability of many volunteers, two queries in all."""
    areas: dict[int, list[str]] = {i: [] for i in ids}
    slots: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for vid, area in session.execute(select(VolunteerArea.volunteer_id, VolunteerArea.area)
                                         .where(VolunteerArea.volunteer_id.in_(ids)).order_by(VolunteerArea.area)):
            areas[vid].append(area)
        for vid, slot in session.execute(select(VolunteerAvailability.volunteer_id, VolunteerAvailability.slot)
                                         .where(VolunteerAvailability.volunteer_id.in_(ids))
                                         .order_by(VolunteerAvailability.slot)):
            slots[vid].append(slot)
    return areas, slots


def rows_of(session: Session, found: list[tuple[Volunteer, Contact]]) -> list[Row]:
    areas, slots = choices_of(session, [v.id for v, _ in found if v.id is not None])
    return [Row(v, c, name_of(c), areas.get(v.id or 0, []), slots.get(v.id or 0, [])) for v, c in found]


@dataclass(frozen=True)
class Pipeline:
    counts: dict[str, int]
    rows: list[Row]  # the list view's page
    next_cursor: int | None  # the last id shown when more follow
    columns: dict[str, list[Row]]  # the board view: the newest of each status


def pipeline(session: Session, settings: Settings, q: ListQuery, after_id: int | None, *, board: bool,
             page_size: int) -> Pipeline:
    """The list (one page) or the board (a column per status, the newest BOARD_COLUMN of each)."""
    filters = q.filters(settings)
    counts = service.status_counts(session, filters)
    if board:
        columns = {s: rows_of(session, service.search(session, replace(filters, status=s), None, BOARD_COLUMN)[0])
                   for s in STATUS_LABELS if not q.status or q.status == s}
        return Pipeline(counts, [], None, columns)
    found, more = service.search(session, filters, after_id, page_size)
    return Pipeline(counts, rows_of(session, found), found[-1][0].id if more and found else None, {})


# --- one volunteer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Qualification:
    record: VolunteerQualification
    label: str
    state: str  # valid, expiring, expired, no-expiry
    words: str


@dataclass(frozen=True)
class SignupLine:
    signup: ShiftSignup
    shift: Shift
    title: str


@dataclass
class VolunteerPage:
    volunteer: Volunteer
    contact: Contact
    name: str
    areas: list[str]
    availability: list[str]
    moves: list[str]
    history: list[VolunteerEvent]
    qualifications: list[Qualification]
    qualification_types: list[tuple[str, str]]
    signups: list[SignupLine]
    hours: list[VolunteerHours]
    hours_approved: float
    emails: list[dict[str, Any]] = field(default_factory=list)


def qualification_state(q: VolunteerQualification, on: dt.date, warn_days: int) -> tuple[str, str]:
    """How a coordinator reads a qualification at a glance: state and the words shown."""
    if q.expires_on is None:
        return "no-expiry", "Valid, no expiry date"
    if q.expires_on < on:
        return "expired", f"Expired on {Clock.day(q.expires_on)}"
    left = (q.expires_on - on).days
    if left <= warn_days:
        return "expiring", f"Expires in {left} day{'s' if left != 1 else ''} ({Clock.day(q.expires_on)})"
    return "valid", f"Valid until {Clock.day(q.expires_on)}"


def _qualifications(session: Session, settings: Settings, volunteer_id: int) -> list[Qualification]:
    type_labels = dict(session.execute(select(quals.QualificationType.key, quals.QualificationType.label)).tuples().all())
    on = today(settings)
    out = []
    for q in quals.of_volunteer(session, volunteer_id):
        state, words = qualification_state(q, on, settings.qualification_warn_days)
        out.append(Qualification(q, type_labels.get(q.type_key, q.type_key), state, words))
    return out


def _signups(session: Session, volunteer_id: int) -> list[SignupLine]:
    rows = session.execute(select(ShiftSignup, Shift, Opportunity.title)
                           .join(Shift, Shift.id == ShiftSignup.shift_id)
                           .join(Opportunity, Opportunity.id == Shift.opportunity_id)
                           .where(ShiftSignup.volunteer_id == volunteer_id)
                           .order_by(Shift.starts_at.desc()).limit(100)).tuples()
    return [SignupLine(s, sh, title) for s, sh, title in rows]


def emails_of(session: Session, contact_id: int) -> list[dict[str, Any]]:
    """Emails this person was sent (transactional and invitations): which, when, how it went. No bodies."""
    mails = session.execute(select(OutboxMessage.template, OutboxMessage.state, OutboxMessage.created_at,
                                   OutboxMessage.sent_at, OutboxMessage.context)
                            .where(OutboxMessage.contact_id == contact_id)
                            .order_by(OutboxMessage.id.desc()).limit(50)).tuples()
    out = [{"kind": t, "state": state, "at": sent or created, "name": _about(ctx)}
           for t, state, created, sent, ctx in mails]
    invites = session.execute(select(Campaign.template, Campaign.name, Campaign.kind, Delivery.status,
                                     Delivery.sent_at, Campaign.created_at)
                              .join(Campaign, Campaign.id == Delivery.campaign_id)
                              .where(Delivery.contact_id == contact_id)
                              .order_by(Delivery.id.desc()).limit(50)).tuples()
    for template, name, kind, status, sent, created in invites:
        kind_label = template if kind == CampaignKind.opportunity else "campaign"
        out.append({"kind": kind_label, "state": status, "at": sent or created, "name": name})
    return sorted(out, key=lambda e: e["at"], reverse=True)


def _about(ctx: dict[str, Any]) -> str:
    """Which status or shift an email was about, from what it was rendered with."""
    if isinstance(ctx.get("volunteer"), dict) and ctx["volunteer"].get("status"):
        return STATUS_LABELS.get(ctx["volunteer"]["status"], "")
    shift = ctx.get("shift")
    if isinstance(shift, dict) and shift.get("date"):
        return f"{shift.get('title', '')}, {shift['date']} {shift.get('starts', '')}".strip()
    return ""


def volunteer_page(session: Session, settings: Settings, volunteer_id: int) -> VolunteerPage:
    vol, contact = service.get_volunteer(session, volunteer_id)
    assert vol.id is not None and contact.id is not None
    history = list(session.scalars(select(VolunteerEvent).where(VolunteerEvent.volunteer_id == vol.id)
                                   .order_by(VolunteerEvent.id.desc()).limit(HISTORY_SHOWN)))
    types = [(t.key, t.label) for t in quals.list_types(session)]
    return VolunteerPage(
        volunteer=vol, contact=contact, name=name_of(contact), areas=service.areas_of(session, vol.id),
        availability=service.availability_of(session, vol.id), moves=list(service.TRANSITIONS[vol.status]),
        history=history, qualifications=_qualifications(session, settings, vol.id), qualification_types=types,
        signups=_signups(session, vol.id), hours=hours_service.search(session, None, vol.id, limit=100),
        hours_approved=hours_service.approved_total(session, vol.id), emails=emails_of(session, contact.id))


def detail_words(detail: dict[str, Any]) -> str:
    """A history event's `detail` in words: what else changed besides the status."""
    parts = []
    if "areas" in detail:
        parts.append("areas: " + ", ".join(AREA_LABELS.get(a, a) for a in detail["areas"]))
    if "availability" in detail:
        parts.append("availability: " + ", ".join(AVAILABILITY_LABELS.get(a, a) for a in detail["availability"]))
    if "paused_until" in detail:
        until = detail["paused_until"]
        parts.append(f"paused until {Clock.day(dt.date.fromisoformat(until))}" if until else "pause ended")
    if detail.get("email"):
        parts.append("status email sent")
    return "; ".join(parts)


# --- the forms of a volunteer's page -----------------------------------------------------------


def move_patch(data: dict[str, str]) -> service.VolunteerPatch:
    """The "Change status" form: a status, a note, and the optional email."""
    status = (data.get("status") or "").strip()
    if not status:
        raise Invalid.field("status", "choose the new status")
    return service.VolunteerPatch.parse({"status": status, "note": data.get("note", ""),
                                         "send_email": data.get("send_email") == "yes"})


def pause_patch(vol: Volunteer, data: dict[str, str], on: dt.date) -> service.VolunteerPatch:
    """The "Pause" form: a date until which the volunteer is paused (moves an active one to paused)."""
    until = service.parse_date(data.get("paused_until"), "paused_until")
    if until is None:
        raise Invalid.field("paused_until", "choose the date the pause ends")
    if until < on:
        raise Invalid.field("paused_until", "must be today or later")
    body: dict[str, Any] = {"paused_until": until.isoformat(), "note": data.get("note", ""),
                            "send_email": data.get("send_email") == "yes"}
    if vol.status != "paused":
        body["status"] = "paused"
    elif body["send_email"]:
        raise Invalid.field("send_email", "the pause email goes when the volunteer is first paused")
    return service.VolunteerPatch.parse(body)


def note_patch(data: dict[str, str]) -> service.VolunteerPatch:
    note = (data.get("note") or "").strip()
    if not note:
        raise Invalid.field("note", "write the note first")
    return service.VolunteerPatch.parse({"note": note})


def qualification_body(data: dict[str, str]) -> dict[str, Any]:
    return {"type": data.get("type", ""), "obtained_on": data.get("obtained_on") or None,
            "expires_on": data.get("expires_on") or None, "note": data.get("note", "")}


def hours_body(data: dict[str, str]) -> dict[str, Any]:
    raw = (data.get("hours") or "").strip()
    try:
        amount: Any = float(raw)
    except ValueError:
        amount = raw or None
    return {"date": data.get("date") or None, "hours": amount, "note": data.get("note", "")}
