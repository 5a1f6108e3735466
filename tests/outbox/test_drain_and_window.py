"""The outbox's shared mechanisms: one email of a kind per address per window, batched draining."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select

from crm.db import session_scope, utcnow
from crm.links import person_links
from crm.mail import MemorySender
from crm.outbox import service as outbox
from crm.outbox.models import OutboxMessage
from tests.factories import make_contact


def test_one_per_kind_and_address_per_window(settings, session):
    contact = make_contact(session, email="t@example.org")
    ids = [outbox.queue(session, "confirm", "t@example.org", {}, contact_id=contact.id, per_window=True)
           for _ in range(5)]
    other = outbox.queue(session, "already-subscribed", "t@example.org", {}, contact_id=contact.id, per_window=True)
    session.commit()
    assert ids[0] and ids[1:] == [None] * 4
    assert other
    # Ten minutes later the window has slid past the first one.
    session.execute(OutboxMessage.__table__.update().values(created_at=utcnow() - dt.timedelta(minutes=11),
                                                             dedupe_key=None))  # as if queued in an earlier bucket
    session.commit()
    assert outbox.queue(session, "confirm", "t@example.org", {}, contact_id=contact.id, per_window=True)


def test_drain_sends_every_due_message_once_in_batches(settings, session):
    for i in range(120):
        contact = make_contact(session, email=f"p{i}@example.org")
        outbox.queue(session, "fresh-link", contact.email, {"contact": {"first_name": "P", "id": contact.id,
                                                                        "email": contact.email, "language": "en"},
                                                            "links": person_links(settings, contact.id)},
                     contact_id=contact.id)
    session.commit()
    sender = MemorySender()
    first = outbox.drain(settings, sender, batch=50)
    again = outbox.drain(settings, sender, batch=50)
    assert [r.outcome for r in first].count("sent") == 120
    assert again == []
    assert len(MemorySender.outbox) == 120
    with session_scope(settings) as s:
        assert set(s.scalars(select(OutboxMessage.state))) == {"sent"}


def test_concurrent_posts_race_to_one_email(settings, client, sent):
    """Eight posts for one address at once (threads, own connections): one confirm email."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers import newsletter_body

    def post(_: int) -> int:
        return client.post("/api/v1/forms/newsletter", json=newsletter_body(email="race@example.org")).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(8)))
    assert set(codes) == {202}
    assert len([m for m in sent() if "race@example.org" in str(m["To"])]) == 1
