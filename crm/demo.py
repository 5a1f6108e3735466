"""`crm demo`: sample articles, contacts and volunteers, so a fresh install has something to segment and mail.

Idempotent: articles are keyed by URL and people by address, so running it twice adds nothing.
Every address is on example.org (RFC 2606): nothing here can reach a real inbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from crm.config import Settings, get_settings
from crm.contacts import service as contacts
from crm.contacts.consent import ConsentSource, record_consent
from crm.db import utcnow

ARTICLES: list[dict[str, Any]] = [
    {"title": "Immunomodulators and Their Side Effects", "slug": "immunomodulators-side-effects",
     "summary": "How thalidomide, lenalidomide and pomalidomide work, the side effects to watch for, and when to "
                "call your care team.", "topics": ["treatment-and-side-effects", "cancer-information"], "days": 2},
    {"title": "Questions to Ask Your Doctor", "slug": "questions-to-ask-your-doctor",
     "summary": "A printable checklist for diagnosis, treatment choices and follow-up visits.",
     "topics": ["cancer-information"], "days": 4},
    {"title": "Quitting Tobacco During Cancer Treatment", "slug": "quitting-tobacco-during-treatment",
     "summary": "Why stopping helps treatment work, and the free coaching our quitline offers.",
     "topics": ["tobacco-cessation"], "days": 5},
    {"title": "Caring for Someone With Cancer: Looking After Yourself Too", "slug": "caregiving-self-care",
     "summary": "Practical help for caregivers: sharing the load, respite and support groups.",
     "topics": ["caregiving", "patient-programs"], "days": 9},
    {"title": "Understanding Clinical Trials", "slug": "understanding-clinical-trials",
     "summary": "Phases, eligibility and how to talk to your doctor about joining a trial.",
     "topics": ["clinical-trials", "research-news"], "days": 12},
    {"title": "Preguntas para hacerle a su médico", "slug": "preguntas-para-su-medico", "language": "es",
     "summary": "Una lista para su próxima cita.", "topics": ["cancer-information"], "days": 3},
]

PEOPLE: list[dict[str, Any]] = [
    {"email": "maria.lopez@example.org", "first_name": "María", "last_name": "López", "language": "es",
     "role": "caregiver", "postal_code": "30309", "interests": ["caregiving", "clinical-trials"],
     "tags": ["walk-2026"], "lists": ["newsletter"]},
    {"email": "james.carter@example.org", "first_name": "James", "last_name": "Carter", "role": "patient",
     "postal_code": "30301", "interests": ["treatment-and-side-effects", "cancer-information"],
     "lists": ["newsletter"]},
    {"email": "linda.nguyen@example.org", "first_name": "Linda", "last_name": "Nguyen", "role": "survivor",
     "postal_code": "10001", "interests": ["research-news", "advocacy"], "tags": ["gala-2026"],
     "lists": ["newsletter", "donor-updates"]},
    {"email": "sam.okafor@example.org", "first_name": "Sam", "last_name": "Okafor", "role": "supporter",
     "postal_code": "60601", "interests": ["tobacco-cessation"], "lists": ["newsletter"]},
    {"email": "grace.kim@example.org", "first_name": "Grace", "last_name": "Kim", "role": "professional",
     "postal_code": "94110", "interests": ["clinical-trials", "research-news"], "lists": []},
]

VOLUNTEERS: list[dict[str, Any]] = [
    {"email": "tom.reyes@example.org", "first_name": "Tom", "last_name": "Reyes", "postal_code": "30305",
     "areas": ["transport-to-treatment"], "availability": ["weekends", "weekday-daytime"]},
    {"email": "ana.silva@example.org", "first_name": "Ana", "last_name": "Silva", "language": "es",
     "postal_code": "30318", "areas": ["peer-support", "events"], "availability": ["weekday-evenings"]},
    {"email": "deb.walsh@example.org", "first_name": "Deb", "last_name": "Walsh", "postal_code": "30312",
     "areas": ["lodging-support", "office"], "availability": ["weekday-daytime"]},
]

ORIGIN = ConsentSource(source="demo", staff_email="demo@localhost.localdomain")


def _person(session: Session, p: dict[str, Any]) -> int:
    fields = {k: p[k] for k in ("first_name", "last_name", "language", "role", "postal_code") if k in p}
    contact, _ = contacts.upsert_contact(session, contacts.normalize_email(p["email"]), **fields)
    assert contact.id is not None
    contacts.add_interests(session, contact.id, p.get("interests", []))
    contacts.add_tags(session, contact.id, p.get("tags", []))
    for list_key in p.get("lists", []):
        sub = contacts.ensure_subscription(session, contact.id, list_key)
        if contacts.set_subscription_state(session, sub, "confirmed"):
            record_consent(session, contact.id, "staff-confirm", ORIGIN, list_key=list_key,
                           detail={"demo": True})
    return contact.id


def load(session: Session, base_url: str = "https://www.example.org", settings: Settings | None = None
         ) -> dict[str, int]:
    from crm.content import service as content
    from crm.content.models import ContentItem
    from crm.journeys import examples as journeys
    from crm.volunteers import service as volunteers

    articles = 0
    now = utcnow()
    for a in ARTICLES:
        url = f"{base_url}/articles/{a['slug']}"
        if session.scalars(select(ContentItem.id).where(ContentItem.url == url)).first() is None:
            content.create_item(session, {"title": a["title"], "url": url, "summary": a["summary"],
                                          "topics": a["topics"], "language": a.get("language", "en"),
                                          "published_at": (now - dt.timedelta(days=a["days"])).isoformat()})
            articles += 1
    for p in PEOPLE:
        _person(session, p)
    for v in VOLUNTEERS:
        contact_id = _person(session, {**v, "lists": ["volunteer-updates"]})
        volunteers.upsert_from_form(session, contact_id, postal_code=v["postal_code"], areas=v["areas"],
                                    availability=v["availability"], skills="", languages=[], message="")
    session.flush()
    added = journeys.load(session, settings or get_settings())  # drafts: off until staff activate them
    return {"articles_added": articles, "contacts": len(PEOPLE), "volunteers": len(VOLUNTEERS),
            "journeys_added": added}
