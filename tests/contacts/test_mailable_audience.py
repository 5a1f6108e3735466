"""mailable_subscription and mailable_interest (kept by triggers) always equal the mailing gate read
from its three tables (and, for mailable_interest, each mailable person's interests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update
from sqlmodel import Session

from crm.contacts.gate import mailable, mailable_audience
from crm.contacts.models import (
    Contact,
    ContactInterest,
    ContactTag,
    MailableInterest,
    MailableSubscription,
    Subscription,
    Suppression,
)
from crm.db import engine_for, is_postgres
from crm.segments import service as segments
from crm.segments.compiler import matching
from tests.conftest import need
from tests.factories import make_contact

LISTS = ("newsletter", "volunteer-updates")
PEOPLE = 3
HASHES = ("h0", "h1", "h2", "h3")
INTERESTS = ("caregiving", "clinical-trials")


def truth(session: Session) -> set[tuple[str, int]]:
    return {(lst, cid) for lst in LISTS for cid in session.scalars(select(Contact.id).where(mailable(lst)))}


def kept(session: Session) -> set[tuple[str, int]]:
    return {(m.list, m.contact_id) for m in session.scalars(select(MailableSubscription))}


def interest_truth(session: Session) -> set[tuple[str, str, int]]:
    held = {(i.contact_id, i.interest_key) for i in session.scalars(select(ContactInterest))}
    return {(lst, key, cid) for lst, cid in truth(session) for holder, key in held if holder == cid}


def interests_kept(session: Session) -> set[tuple[str, str, int]]:
    return {(m.list, m.interest_key, m.contact_id) for m in session.scalars(select(MailableInterest))}


def both_equal(session: Session) -> bool:
    return kept(session) == truth(session) and interests_kept(session) == interest_truth(session)


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
    elif kind == "interest":
        if session.get(ContactInterest, (arg, who)) is None:
            session.execute(insert(ContactInterest).values(contact_id=who, interest_key=arg))
    elif kind == "no-interest":
        session.execute(delete(ContactInterest).where(ContactInterest.contact_id == who,
                                                      ContactInterest.interest_key == arg))
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
    st.tuples(st.just("interest"), who, st.sampled_from(INTERESTS)),
    st.tuples(st.just("no-interest"), who, st.sampled_from(INTERESTS)),
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
            # A single statement inside a transaction and its commit must both leave them equal.
            assert both_equal(session), step
        session.commit()
        assert both_equal(session)


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


RULE_TREES = [
    {"interest": "caregiving"},
    {"interest": {"all": ["caregiving", "clinical-trials"]}},
    {"all": [{"interest": {"all": ["caregiving", "clinical-trials"]}}, {"not": {"tag": "board-member"}}]},
    {"all": [{"tag": "board-member"}, {"interest": {"any": ["caregiving"], "none": ["clinical-trials"]}}]},
    {"any": [{"interest": "caregiving"}, {"tag": "board-member"}]},
]


@pytest.mark.parametrize("rules", RULE_TREES)
def test_a_count_through_a_gate_read_from_kept_interests_equals_the_general_form(session, rules):
    everyone = [make_contact(session, interests=list(keys)) for keys in
                ([], ["caregiving"], ["clinical-trials"], ["caregiving", "clinical-trials"]) * 3]
    for i, person in enumerate(everyone):
        if i % 5 != 4:  # some are not on the list at all
            session.execute(insert(Subscription).values(contact_id=person.id, list="newsletter",
                                                        state="confirmed" if i % 3 else "pending"))
        if i % 6 == 1:
            session.execute(insert(ContactTag).values(contact_id=person.id, tag="board-member"))
    session.execute(insert(Suppression).values(email_hash=everyone[4].email_hash, reason="bounced"))
    session.commit()
    general = session.scalar(select(func.count()).select_from(Contact).where(matching(rules, "newsletter")))
    assert general > 0
    assert segments.count(session, rules, "newsletter") == general


def _two_transactions(settings, first: Callable[[Session], None], second: Callable[[Session], None]) -> None:
    """`first` runs and holds its transaction open while `second` runs in another; then both commit."""
    engine = engine_for(settings.database_url)
    done = threading.Event()
    with Session(engine) as one:
        first(one)

        def other() -> None:
            with Session(engine) as two:
                second(two)
                two.commit()
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        # Without the contact row lock the second transaction finishes here, on a snapshot that
        # cannot see the first one's change; with it, it waits for the commit below.
        done.wait(0.5)
        one.commit()
        thread.join(30)
    assert done.is_set()


@pytest.mark.postgres
@pytest.mark.parametrize("interest_first", [True, False], ids=["interest-then-confirm", "confirm-then-interest"])
def test_a_new_interest_racing_a_confirmation_is_kept(settings, session, interest_first):
    need(is_postgres(session), "PostgreSQL row locks are what this test is about")
    person = make_contact(session)
    session.execute(insert(Subscription).values(contact_id=person.id, list="newsletter", state="pending"))
    session.commit()

    def add_interest(s: Session) -> None:
        s.execute(insert(ContactInterest).values(contact_id=person.id, interest_key="caregiving"))

    def confirm(s: Session) -> None:
        s.execute(update(Subscription).where(Subscription.contact_id == person.id).values(state="confirmed"))

    _two_transactions(settings, *((add_interest, confirm) if interest_first else (confirm, add_interest)))
    session.expire_all()
    assert interests_kept(session) == interest_truth(session) == {("newsletter", "caregiving", person.id)}
    assert segments.count(session, {"interest": "caregiving"}, "newsletter") == 1


@pytest.mark.postgres
def test_an_interest_dropped_while_its_holder_confirms_is_not_kept(settings, session):
    need(is_postgres(session), "PostgreSQL row locks are what this test is about")
    person = make_contact(session, interests=["caregiving"])
    session.execute(insert(Subscription).values(contact_id=person.id, list="newsletter", state="pending"))
    session.commit()

    def drop_interest(s: Session) -> None:
        s.execute(delete(ContactInterest).where(ContactInterest.contact_id == person.id))

    def confirm(s: Session) -> None:
        s.execute(update(Subscription).where(Subscription.contact_id == person.id).values(state="confirmed"))

    _two_transactions(settings, drop_interest, confirm)
    session.expire_all()
    assert kept(session) == {("newsletter", person.id)}
    assert interests_kept(session) == interest_truth(session) == set()
