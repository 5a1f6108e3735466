"""mailable_subscription (kept by triggers) always equals the mailing gate read from its three tables."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update
from sqlmodel import Session

from crm.contacts.gate import mailable, mailable_audience
from crm.contacts.models import Contact, MailableSubscription, Subscription, Suppression
from crm.db import engine_for
from crm.segments import service as segments
from tests.factories import make_contact

LISTS = ("newsletter", "volunteer-updates")
PEOPLE = 3
HASHES = ("h0", "h1", "h2", "h3")


def truth(session: Session) -> set[tuple[str, int]]:
    return {(lst, cid) for lst in LISTS for cid in session.scalars(select(Contact.id).where(mailable(lst)))}


def kept(session: Session) -> set[tuple[str, int]]:
    return {(m.list, m.contact_id) for m in session.scalars(select(MailableSubscription))}


def _apply(session: Session, people: list[int], op: tuple[Any, ...]) -> None:  # noqa: C901 - one branch per kind
    kind, who, arg = op[0], people[op[1]], op[2]
    if kind == "subscribe":
        lst, state = arg
        found = session.scalar(select(Subscription.id).where(Subscription.contact_id == who, Subscription.list == lst))
        if found:
            session.execute(update(Subscription).where(Subscription.id == found).values(state=state))
        else:
            session.execute(insert(Subscription).values(contact_id=who, list=lst, state=state))
    elif kind == "drop":
        session.execute(delete(Subscription).where(Subscription.contact_id == who, Subscription.list == arg))
    elif kind == "move":  # a subscription re-pointed at another list (a merge or a fix by hand)
        taken = select(Subscription.id).where(Subscription.contact_id == who, Subscription.list == arg[1])
        if session.scalar(taken) is None:
                session.execute(update(Subscription).where(Subscription.contact_id == who, Subscription.list == arg[0])
                            .values(list=arg[1]))
    elif kind == "status":
        session.execute(update(Contact).where(Contact.id == who).values(status=arg))
    elif kind == "address":
        session.execute(update(Contact).where(Contact.id == who).values(email_hash=arg))
    elif kind == "suppress":
        if session.get(Suppression, arg) is None:
            session.execute(insert(Suppression).values(email_hash=arg, reason="manual"))
    elif kind == "unsuppress":
        session.execute(delete(Suppression).where(Suppression.email_hash == arg))
    elif kind == "rehash" and session.get(Suppression, arg[1]) is None:  # the suppression entry re-keyed
        session.execute(update(Suppression).where(Suppression.email_hash == arg[0]).values(email_hash=arg[1]))


who = st.integers(0, PEOPLE - 1)
lists = st.sampled_from(LISTS)
hashes = st.sampled_from(HASHES)
ops = st.one_of(
    st.tuples(st.just("subscribe"), who, st.tuples(lists, st.sampled_from(["pending", "confirmed", "unsubscribed"]))),
    st.tuples(st.just("drop"), who, lists),
    st.tuples(st.just("move"), who, st.tuples(lists, lists)),
    st.tuples(st.just("status"), who, st.sampled_from(["active", "unsubscribed", "bounced", "erased"])),
    st.tuples(st.just("address"), who, hashes),
    st.tuples(st.just("suppress"), who, hashes),
    st.tuples(st.just("unsuppress"), who, hashes),
    st.tuples(st.just("rehash"), who, st.tuples(hashes, hashes)),
)


@given(st.lists(ops, min_size=1, max_size=25))
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_kept_set_equals_the_gate_after_any_changes(settings, steps):
    engine = engine_for(settings.database_url)
    with Session(engine) as session:
        session.execute(delete(Suppression))
        session.execute(delete(Subscription))
        session.execute(delete(Contact))
        session.commit()
        people = [make_contact(session, email_hash=HASHES[i]).id for i in range(PEOPLE)]
        session.commit()
        for step in steps:
            _apply(session, people, step)
            # A single statement inside a transaction and its commit must both leave the two equal.
            assert kept(session) == truth(session), step
        session.commit()
        assert kept(session) == truth(session)


def test_a_rolled_back_change_leaves_the_kept_set_as_it_was(session):
    person = make_contact(session)
    session.execute(insert(Subscription).values(contact_id=person.id, list="newsletter", state="confirmed"))
    session.commit()
    before = kept(session)
    assert before == {("newsletter", person.id)}
    session.execute(insert(Suppression).values(email_hash=person.email_hash, reason="manual"))
    assert kept(session) == set()
    session.rollback()
    assert kept(session) == before == truth(session)


def test_counts_through_a_gate_follow_unsubscribe_and_suppression(session):
    people = [make_contact(session) for _ in range(4)]
    for p in people:
        session.execute(insert(Subscription).values(contact_id=p.id, list="newsletter", state="confirmed"))
    session.commit()
    assert segments.count(session, {}, "newsletter") == 4
    session.execute(update(Subscription).where(Subscription.contact_id == people[0].id).values(state="unsubscribed"))
    session.execute(insert(Suppression).values(email_hash=people[1].email_hash, reason="bounced"))
    session.execute(update(Contact).where(Contact.id == people[2].id).values(status="erased"))
    session.commit()
    assert segments.count(session, {}, "newsletter") == 1
    assert session.scalar(select(func.count()).select_from(Contact).where(mailable_audience("newsletter"))) == 1
    session.execute(delete(Suppression).where(Suppression.email_hash == people[1].email_hash))
    session.commit()
    assert segments.count(session, {}, "newsletter") == 2
