"""Segment rules compile to one SQL condition: every condition against a small known population."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from crm.campaigns.models import Campaign, Delivery
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.errors import Invalid
from crm.segments import service
from crm.volunteers.models import Volunteer, VolunteerArea, VolunteerAvailability
from tests.factories import make_contact


def _volunteer(session: Session, contact: Contact, status: str, areas: list[str], slots: list[str]) -> None:
    vol = Volunteer(contact_id=contact.id, status=status, postal_code=contact.postal_code)
    session.add(vol)
    session.flush()
    session.add_all([VolunteerArea(area=a, volunteer_id=vol.id) for a in areas])
    session.add_all([VolunteerAvailability(slot=s, volunteer_id=vol.id) for s in slots])
    session.flush()


def _opened(session: Session, contact: Contact, days_ago: int, *, clicked: bool = False) -> None:
    """What open/click tracking records: the delivery's stamp and the contact's last_engaged_at."""
    campaign = Campaign(name=f"c{contact.id}-{days_ago}", state="sent")
    session.add(campaign)
    session.flush()
    when = utcnow() - dt.timedelta(days=days_ago)
    session.add(Delivery(campaign_id=campaign.id, contact_id=contact.id, status="sent", sent_at=when,
                         opened_at=when, clicked_at=when if clicked else None))
    contact.last_engaged_at = max(when, contact.last_engaged_at or when)
    session.add(contact)
    session.flush()


def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    now = utcnow()
    ana = make_contact(session, email="ana@example.org", language="es", role="caregiver", postal_code="30301",
                       interests=["clinical-trials", "caregiving"], tags=["gala-2026"],
                       lists={"newsletter": "confirmed"}, created_at=_at("2026-02-01"),
                       last_engaged_at=now - dt.timedelta(days=10))
    ben = make_contact(session, email="ben@example.org", role="patient", postal_code="30412",
                       interests=["tobacco-cessation"], tags=["board-member"], lists={"newsletter": "pending"},
                       created_at=_at("2025-06-01"), bereaved=True)
    cy = make_contact(session, email="cy@example.org", role="family", postal_code="90210",
                      interests=["cancer-information", "clinical-trials"], lists={"volunteer-updates": "confirmed"},
                      created_at=_at("2024-01-01"))
    dee = make_contact(session, email="dee@example.org", language="es", postal_code="30399",
                       lists={"newsletter": "confirmed"}, created_at=_at("2026-03-01"))
    eve = make_contact(session, email="eve@example.org", role="supporter", status="unsubscribed",
                       interests=["caregiving"], lists={"newsletter": "unsubscribed"}, created_at=_at("2025-01-01"))
    fay = make_contact(session, email="fay@example.org", status="erased", created_at=_at("2025-01-01"))
    _volunteer(session, cy, "active", ["transport-to-treatment", "events"], ["weekends"])
    _volunteer(session, dee, "interested", ["events"], ["weekday-evenings"])
    _opened(session, dee, 5)
    _opened(session, cy, 200)
    _opened(session, ben, 30, clicked=True)
    return {c.email.split("@")[0]: c.id for c in (ana, ben, cy, dee, eve, fay)}  # type: ignore[misc, union-attr]


def matches(session: Session, rules: dict[str, Any] | None, list_key: str | None = None) -> set[str]:
    ids = set(session.scalars(select(Contact.id).where(service.matching(rules, list_key))))
    assert service.count(session, rules, list_key) == len(ids)
    # The console's panel: both counts at once, whichever path (index reads or one pass) the tree takes.
    for gate_list in ("newsletter", "volunteer-updates"):
        mailable = set(session.scalars(select(Contact.id).where(service.matching(rules, gate_list))))
        assert service.count_and_mailable(session, rules, gate_list) == (service.count(session, rules),
                                                                         len(mailable))
    return {c.email.split("@")[0] for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}


CASES: list[tuple[Any, set[str]]] = [
    (None, {"ana", "ben", "cy", "dee", "eve"}),
    ({"all": []}, {"ana", "ben", "cy", "dee", "eve"}),
    ({"interest": {"any": ["clinical-trials", "tobacco-cessation"]}}, {"ana", "ben", "cy"}),
    ({"interest": {"all": ["clinical-trials", "caregiving"]}}, {"ana"}),
    ({"interest": {"none": ["caregiving"]}}, {"ben", "cy", "dee"}),
    ({"interest": "caregiving"}, {"ana", "eve"}),
    ({"role": {"in": ["caregiver", "family"]}}, {"ana", "cy"}),
    ({"role": "patient"}, {"ben"}),
    ({"list": "newsletter"}, {"ana", "dee"}),
    ({"list": "volunteer-updates"}, {"cy"}),
    ({"language": "es"}, {"ana", "dee"}),
    ({"language": {"in": ["en"]}}, {"ben", "cy", "eve"}),
    ({"postal_code": {"prefix": "303"}}, {"ana", "dee"}),
    ({"postal_code": {"prefix": ["303", "904"]}}, {"ana", "dee"}),
    ({"postal_code": {"in": ["30412", "90210"]}}, {"ben", "cy"}),
    ({"postal_code": {"prefix": "3%"}}, set()),
    ({"tag": "gala-2026"}, {"ana"}),
    ({"not": {"tag": "board-member"}}, {"ana", "cy", "dee", "eve"}),
    ({"tag": {"any": ["gala-2026", "board-member"]}}, {"ana", "ben"}),
    ({"signed_up": {"after": "2026-01-01"}}, {"ana", "dee"}),
    ({"signed_up": {"before": "2025-06-01"}}, {"cy", "eve"}),
    ({"signed_up": {"after": "2025-01-01", "before": "2026-02-01"}}, {"ben", "eve"}),
    ({"volunteer": {"area": "transport-to-treatment", "availability": "weekends"}}, {"cy"}),
    ({"volunteer": {"area": "events"}}, {"cy", "dee"}),
    ({"volunteer": {"status": ["interested", "contacted"]}}, {"dee"}),
    ({"volunteer": {}}, {"cy", "dee"}),
    ({"volunteer": False}, {"ana", "ben", "eve"}),
    ({"engaged": {"within_days": 90}}, {"ana", "ben", "dee"}),
    ({"engaged": {"within_days": 7}}, {"dee"}),
    ({"bereaved": True}, {"ben"}),
    ({"bereaved": False}, {"ana", "cy", "dee", "eve"}),
    ({"any": [{"tag": "gala-2026"}, {"engaged": {"within_days": 7}}]}, {"ana", "dee"}),
    ({"all": [{"language": "es"}, {"not": {"list": "newsletter"}}]}, set()),
    ({"all": [
        {"interest": {"any": ["tobacco-cessation", "clinical-trials"]}},
        {"role": {"in": ["caregiver", "family"]}},
        {"list": "newsletter"},
        {"language": "es"},
        {"postal_code": {"prefix": "303"}},
        {"signed_up": {"after": "2026-01-01"}},
        {"not": {"tag": "board-member"}},
        {"any": [{"tag": "gala-2026"}, {"engaged": {"within_days": 90}}]},
    ]}, {"ana"}),
]


@pytest.mark.parametrize(("rules", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_condition_selects_exactly_the_right_people(session: Session, people: dict[str, int],
                                                         rules: Any, expected: set[str]) -> None:
    assert matches(session, rules) == expected


def test_count_through_a_list_applies_the_mailing_gate(session: Session, people: dict[str, int]) -> None:
    assert matches(session, {"interest": "caregiving"}, "newsletter") == {"ana"}
    contacts.suppress(session, "ana@example.org", "complained")
    assert matches(session, {"interest": "caregiving"}, "newsletter") == set()


def test_audience_is_the_rules_through_the_one_gate(session: Session, people: dict[str, int]) -> None:
    everyone = {"all": []}
    assert set(session.scalars(service.audience(everyone, "newsletter"))) == {people["ana"], people["dee"]}
    assert set(session.scalars(service.audience({"language": "es"}, "volunteer-updates"))) == set()
    contacts.suppress(session, "dee@example.org", "bounced")
    assert set(session.scalars(service.audience(None, "newsletter"))) == {people["ana"]}


def test_the_whole_tree_is_one_query(session: Session, people: dict[str, int]) -> None:
    statements: list[str] = []
    from sqlalchemy import event

    engine = session.get_bind()
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        service.count(session, CASES[-1][0])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 1


BAD: list[tuple[Any, str, str]] = [
    ({"everyone": True}, "rules.everyone", "unknown operator or condition"),
    ({"all": [{"language": "es"}, {"role": "patient"}, {"interest": {"anyy": ["caregiving"]}}]},
     "rules.all[2].interest.anyy", "unknown key"),
    ({"interest": {"any": ["caregivng"]}}, "rules.interest.any", "unknown interest 'caregivng'"),
    ({"all": {"language": "es"}}, "rules.all", "must be a list"),
    ({"any": []}, "rules.any", "at least one"),
    ({"language": "fr"}, "rules.language", "unknown language 'fr'"),
    ({"role": {"in": ["doctor"]}}, "rules.role.in", "unknown role 'doctor'"),
    ({"list": "gossip"}, "rules.list", "unknown list 'gossip'"),
    ({"postal_code": "303"}, "rules.postal_code", "must be an object"),
    ({"postal_code": {"starts": "303"}}, "rules.postal_code.starts", "unknown key"),
    ({"signed_up": {"after": "last tuesday"}}, "rules.signed_up.after", "must be a date"),
    ({"volunteer": {"area": "juggling"}}, "rules.volunteer.area", "unknown area 'juggling'"),
    ({"volunteer": {"status": ["active", 3]}}, "rules.volunteer.status", "list of them"),
    ({"engaged": {"within_days": "90"}}, "rules.engaged.within_days", "whole number"),
    ({"engaged": {"within_days": 0}}, "rules.engaged.within_days", "whole number"),
    ({"bereaved": "yes"}, "rules.bereaved", "true or false"),
    ({"not": [{"tag": "x"}]}, "rules.not", "exactly one"),
    ({"tag": "a", "language": "es"}, "rules", "exactly one"),
    ([{"tag": "a"}], "rules", "exactly one"),
]


@pytest.mark.parametrize(("rules", "path", "reason"), BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_a_bad_tree_names_the_path_and_why(session: Session, rules: Any, path: str, reason: str) -> None:
    with pytest.raises(Invalid) as info:
        service.validate_rules(rules, contacts.interest_keys(session))
    assert path in info.value.fields, info.value.fields
    assert reason in info.value.fields[path]
    assert path in info.value.message


def test_a_deep_tree_is_refused_not_a_crash() -> None:
    rules: dict[str, Any] = {"tag": "x"}
    for _ in range(100):
        rules = {"not": rules}
    with pytest.raises(Invalid):
        service.validate_rules(rules)


def test_counts_read_from_a_link_table_still_leave_the_erased_out(session: Session, people: dict[str, int]) -> None:
    # Erasure deletes link rows; should one ever survive, the count must still not see the person.
    contacts.add_interests(session, people["fay"], ["caregiving"])
    contacts.add_tags(session, people["fay"], ["gala-2026"])
    session.flush()
    assert matches(session, {"interest": "caregiving"}) == {"ana", "eve"}
    assert matches(session, {"all": [{"tag": "gala-2026"}, {"interest": {"all": ["caregiving"]}}]}) == {"ana"}
