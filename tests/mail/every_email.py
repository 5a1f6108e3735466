"""Every kind of email the service sends, in both languages, made through the real builders.

The form services, the confirm link, the outbox (transactional mail: render + Outgoing with the
transactional headers) and the campaign pipeline (campaigns, digests, volunteer invitations) do the
work; only the context of the emails whose trigger needs a long set-up (shift changes, staff alerts)
is written here, with links signed for real contacts so that they open real pages.
Used by the conformance test, the wording test and the screenshots.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from crm.campaigns import digests, invitations, pipeline, planning, service
from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.content.models import ContentItem, ContentTopic
from crm.db import session_scope, utcnow
from crm.forms import service as forms
from crm.links import person_links
from crm.mail import MemorySender
from crm.origin import RequestMeta
from crm.outbox import service as outbox
from crm.volunteers import opportunities as opps
from crm.volunteers.signups import portal_url
from tests.factories import make_contact, make_volunteer

LANGS = ("en", "es")
META = RequestMeta(client_ip="192.0.2.1", user_agent="conformance")
NAMES = {"en": ("Sam", "Lee"), "es": ("Ana", "Pérez")}
# Kinds whose context is written here (see the module docstring); the rest come from real triggers.
WRITTEN = ("already-subscribed", "fresh-link", "volunteer-status", "donation-answer", "donation-overdue-summary",
           "webhook-disabled", "qualification-expiring", "shift-reminder", "shift-changed", "shift-cancelled",
           "shift-offer", "deliverability-alert")
# Written for staff addresses, not for the person whose context they carry.
TO_STAFF = ("donation-overdue-summary", "webhook-disabled", "deliverability-alert")


BULK_KINDS: dict[str, str] = {}  # X-CRM-Campaign -> campaign, digest or opportunity (filled as they are sent)


def kind_of(msg: EmailMessage) -> str:
    """The template name of a transactional email; campaign, digest or opportunity-invite for bulk mail."""
    if msg.get("X-CRM-Kind"):
        return str(msg["X-CRM-Kind"])
    kind = BULK_KINDS.get(str(msg.get("X-CRM-Campaign")), "campaign")
    return {"opportunity": "opportunity-invite"}.get(kind, kind)


def _written_context(settings: Settings, kind: str, contact_id: int, email: str, lang: str, i: int) -> dict[str, Any]:
    first, last = NAMES[lang]
    person = {"first_name": first, "last_name": last, "email": email, "language": lang, "role": "caregiver",
              "id": contact_id}
    links = {**person_links(settings, contact_id), "volunteer": portal_url(settings, contact_id)}
    start = dt.datetime(2030, 3, 14, 17, 30, tzinfo=dt.UTC)
    shift = {"id": i, "title": "Drive patients to treatment", "location": "Main St clinic", "notes": "",
             "date": start.date().isoformat(), "starts": "17:30", "ends": "20:00", "timezone": settings.timezone,
             "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=2, minutes=30)).isoformat()}
    contexts: dict[str, dict[str, Any]] = {
        "already-subscribed": {"contact": person, "links": links},
        "fresh-link": {"contact": person, "links": links},
        "volunteer-status": {"contact": person, "links": links, "volunteer": {
            "status": ("contacted", "onboarding", "active", "paused", "inactive")[i % 5],
            "areas": ["transport-to-treatment", "peer-support"], "paused_until": "2030-05-01"}},
        "donation-answer": {"contact": person, "links": links, "answer": "Thank you for asking.\n\nYes, we can.",
                            "inquiry": {"id": i, "type": "monthly", "in_honor_of": ""}},
        "donation-overdue-summary": {"hours": 48, "total": 2, "more": 0, "date": "2030-03-14", "items": [
            {"id": 1, "type": "tribute-memorial", "status": "new", "assigned_to": None, "age_hours": 50,
             "url": f"{settings.public_base_url}/staff/donations/1"},
            {"id": 2, "type": "stock-or-daf", "status": "assigned", "assigned_to": "di@staff.example.org",
             "age_hours": 72, "url": f"{settings.public_base_url}/staff/donations/2"}],
            "console": {"overdue": f"{settings.public_base_url}/staff/donations?overdue=1"}},
        "deliverability-alert": {"paused": i % 2 == 0, "campaign": {"id": 7, "name": "Spring appeal"},
                                 "reason": "6 % of 120 messages failed permanently (the limit is 5 %)"},
        "webhook-disabled": {"endpoint": {"id": 3, "url": "https://hooks.example.org/crm"},
                             "reason": "20 failed attempts over 3 days"},
        "qualification-expiring": {"contact": person, "links": links,
                                   "qualification": {"type": "driver-check", "label": "Driver background check",
                                                     "expires_on": "2030-04-30"}},
        "shift-offer": {"contact": person, "shift": shift, "offer_expires_at": (start - dt.timedelta(days=1)).isoformat(),
                        "links": {**links, "accept": f"{links['volunteer']}/offers/{i}"}},
    }
    for name in ("shift-reminder", "shift-changed", "shift-cancelled"):
        contexts[name] = {"contact": person, "shift": shift, "offer_expires_at": None,
                          "links": {**links, "cancel": f"{links['volunteer']}/signups/{i}/cancel"}}
    return contexts[kind]


def _real_triggers(settings: Settings, lang: str, i: int) -> None:
    """Forms as the website posts them: confirm, volunteer-welcome/notice, donation-ack/notice."""
    first, last = NAMES[lang]
    with session_scope(settings) as s:
        forms.submit_newsletter(s, settings, {"email": f"news-{lang}-{i}@example.org", "first_name": first,
                                              "interests": ["caregiving", "clinical-trials"], "language": lang,
                                              "consent": True}, META)
        forms.submit_volunteer(s, settings, {"email": f"vol-{lang}-{i}@example.org", "first_name": first,
                                             "last_name": last, "postal_code": "30301", "language": lang,
                                             "areas": ["transport-to-treatment", "lodging-support"],
                                             "availability": ["weekday-evenings", "weekends"]}, META)
        forms.submit_donation(s, settings, {"email": f"give-{lang}-{i}@example.org", "first_name": first,
                              "last_name": last, "inquiry_type": "tribute-memorial", "language": lang,
                              "in_honor_of": "María"}, META)


def _written(settings: Settings, lang: str, i: int) -> None:
    with session_scope(settings) as s:
        email = f"mixed-{lang}-{i}@example.org"
        vol = make_volunteer(s, email=email, first_name=NAMES[lang][0], language=lang,
                             lists={"newsletter": "confirmed", "volunteer-updates": "confirmed"})
        c_id = vol.contact_id
        for kind in WRITTEN:
            to = settings.notify_donations if kind in TO_STAFF else email
            outbox.queue(s, kind, to, _written_context(settings, kind, c_id, email, lang, i), contact_id=c_id,
                         language=lang, dedupe_key=f"conformance:{kind}:{lang}:{i}")


def _staff_invitation(settings: Settings, i: int) -> None:
    """The console invitation, as `crm staff create` sends it (a real set-password link)."""
    from crm.console.invites import send_invitation
    from crm.staff.service import create_staff

    with session_scope(settings) as s:
        staff, _ = create_staff(s, f"new-staff-{i}@staff.example.org", "editor")
        send_invitation(s, settings, staff, "admin@staff.example.org")


def _welcome(settings: Settings) -> None:
    """The welcome goes when a confirm link is clicked: click every confirm link sent so far."""
    from crm.preferences import service as prefs

    for msg in list(MemorySender.outbox):
        if kind_of(msg) != "confirm":
            continue
        body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        token = body.split("/confirm/", 1)[1].split()[0]
        with session_scope(settings) as s:
            prefs.confirm(s, settings, token, META)


def _campaigns(settings: Settings, per_language: int) -> None:
    """One campaign, one digest run and one volunteer invitation, each to `per_language` people per language."""
    now = utcnow()
    with session_scope(settings) as s:
        for lang in LANGS:
            item = ContentItem(title="Questions to Ask Your Doctor" if lang == "en" else "Preguntas para su médico",
                               url="https://example.org/questions", language=lang,
                               summary="A checklist for your next appointment." if lang == "en"
                               else "Una lista para su próxima cita.",
                               published_at=now - dt.timedelta(days=1))
            s.add(item)
            s.flush()
            s.add(ContentTopic(content_id=item.id, interest_key="caregiving"))
            for n in range(per_language):
                make_contact(s, email=f"reader-{lang}-{n}@example.org", first_name=NAMES[lang][0], language=lang,
                             interests=["caregiving"], lists={"newsletter": "confirmed"}, frequency="weekly")
                make_volunteer(s, email=f"helper-{lang}-{n}@example.org", first_name=NAMES[lang][0],
                               language=lang)
        opp = opps.create(s, {"title": "Drive patients to treatment", "area": "transport-to-treatment",
                              "description": "Two hours, once a week.", "postal_code": "30301", "needed": 3,
                              "schedule": "Tuesdays 9-12", "starts_on": "2030-06-02", "ends_on": "2030-08-25"},
                          "coord@staff.example.org")
        invitations.notify(s, settings, opp.id, "coord@staff.example.org")
        body = {"name": "Spring", "subject": "Spring news for {{ contact.first_name }}",
                "body_html": "<p>Dear {{ contact.first_name }},</p><p>Our spring walk is on May 3.</p>",
                "translations": {"es": {"subject": "Noticias de primavera para {{ contact.first_name }}",
                                        "body_html": "<p>Hola, {{ contact.first_name }}:</p>"
                                                     "<p>Nuestra caminata es el 3 de mayo.</p>",
                                        "body_text": "Hola, {{ contact.first_name }}: nuestra caminata es el 3 de mayo."}}}
        cid = service.create(s, settings, body, "editor@staff.example.org").id
        service.launch(s, settings, cid)
    planning.plan(settings, cid)
    with session_scope(settings) as s:
        digests.plan_run(s, settings, "weekly")
    with session_scope(settings) as s:
        rows = s.execute(select(Campaign.id, Campaign.kind).where(Campaign.state == "sending")).all()
    BULK_KINDS.update({str(cid): str(kind) for cid, kind in rows})
    for campaign_id, _ in rows:
        for _ in range(50):
            if not pipeline.send_some(settings, campaign_id, MemorySender()).has_more:
                break


def every_email(settings: Settings, rounds: int = 1, per_language: int = 1) -> list[EmailMessage]:
    """`rounds` of every transactional kind per language, and bulk mail to `per_language` people each."""
    MemorySender.outbox.clear()
    for i in range(rounds):
        for lang in LANGS:
            _real_triggers(settings, lang, i)
            _written(settings, lang, i)
        _staff_invitation(settings, i)
    outbox.drain(settings, MemorySender(), max_batches=10_000)
    _welcome(settings)
    outbox.drain(settings, MemorySender(), max_batches=10_000)
    _campaigns(settings, per_language)
    return list(MemorySender.outbox)
