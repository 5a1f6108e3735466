"""crm.forms.batch: concurrent signups share one commit; a failing member never fails another."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from crm.contacts.models import Contact, Subscription
from crm.db import session_scope
from crm.forms import service as forms
from crm.forms.batch import GroupCommit
from crm.forms.models import FormSubmission
from crm.origin import RequestMeta
from crm.outbox.models import OutboxMessage
from tests.helpers import newsletter_body

META = RequestMeta("203.0.113.7", "pytest")


def signup(settings: Any, address: str) -> Callable[[Session], list[int]]:
    data = newsletter_body(email=address)
    with session_scope(settings) as s:
        values = forms.validate_newsletter(s, data)
    return lambda session: forms.write_newsletter(session, settings, values, data, META)


def count(settings: Any, model: Any) -> int:
    with session_scope(settings) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def queued_behind_a_running_group(group: GroupCommit, works: list[Callable[[Session], Any]]
                                  ) -> list[dict[str, Any]]:
    """Hold the only slot with a slow member, queue `works` behind it, let go; the callers' outcomes."""
    running, release = threading.Event(), threading.Event()

    def blocker(session: Session) -> str:
        running.set()
        release.wait(10)
        return "blocker"

    outcomes: list[dict[str, Any]] = [{} for _ in works]

    def call(i: int, work: Callable[[Session], Any]) -> None:
        try:
            outcomes[i]["result"] = group.run(work)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcomes[i]["error"] = exc

    first = threading.Thread(target=group.run, args=(blocker,))
    first.start()
    assert running.wait(10)
    threads = [threading.Thread(target=call, args=(i, w)) for i, w in enumerate(works)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(group._queue) < len(works):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    release.set()
    for t in [first, *threads]:
        t.join(20)
    return outcomes


def test_signups_queued_together_commit_as_one_group(settings: Any) -> None:
    group = GroupCommit(settings, max_group=16, max_in_flight=1)
    works = [signup(settings, f"g{i}@example.org") for i in range(10)]
    outcomes = queued_behind_a_running_group(group, works)
    assert group.groups == 1 and group.reruns == 0
    assert all(len(o["result"]) == 1 for o in outcomes)  # each caller gets its own outbox id
    assert len({o["result"][0] for o in outcomes}) == 10
    assert count(settings, Contact) == 10 and count(settings, FormSubmission) == 10
    assert count(settings, Subscription) == 10 and count(settings, OutboxMessage) == 10


def test_groups_hold_at_most_max_group(settings: Any) -> None:
    group = GroupCommit(settings, max_group=4, max_in_flight=1)
    queued_behind_a_running_group(group, [signup(settings, f"m{i}@example.org") for i in range(10)])
    assert group.groups == 3  # 4 + 4 + 2 (the blocker ran alone)
    assert count(settings, Contact) == 10


def test_a_failing_member_is_alone_in_failing(settings: Any) -> None:
    group = GroupCommit(settings, max_group=16, max_in_flight=1)

    def bad(session: Session) -> None:
        signup(settings, "bad@example.org")(session)  # writes, then fails: its rows must not stay
        raise ValueError("this signup is broken")

    works = [signup(settings, f"ok{i}@example.org") for i in range(3)] + [bad] + [signup(settings, "ok3@example.org")]
    outcomes = queued_behind_a_running_group(group, works)
    assert isinstance(outcomes[3]["error"], ValueError)
    assert all(len(o["result"]) == 1 for i, o in enumerate(outcomes) if i != 3)
    assert group.reruns == 5
    with session_scope(settings) as s:
        emails = set(s.scalars(select(Contact.email_key)))
    assert emails == {f"ok{i}@example.org" for i in range(4)}  # nothing of the bad one, nothing lost
    assert count(settings, FormSubmission) == 4 and count(settings, OutboxMessage) == 4


def test_never_more_groups_in_flight_than_allowed(settings: Any) -> None:
    group = GroupCommit(settings, max_group=2, max_in_flight=2)
    active, peak, lock = [0], [0], threading.Lock()

    def work(session: Session) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return 1

    threads = [threading.Thread(target=group.run, args=(work,)) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # Members of one group run one after the other, so at most one per group at a time.
    assert peak[0] <= 2


def test_same_address_twice_in_one_group_is_one_contact_and_one_email(settings: Any) -> None:
    group = GroupCommit(settings, max_group=16, max_in_flight=1)
    outcomes = queued_behind_a_running_group(group, [signup(settings, "twice@example.org") for _ in range(2)])
    assert group.groups == 1
    assert sorted(len(o["result"]) for o in outcomes) == [0, 1]  # one confirm email per ten minutes
    assert count(settings, Contact) == 1 and count(settings, FormSubmission) == 2


@pytest.mark.parametrize("clients", [24])
def test_newsletter_posts_through_the_route_all_commit(client: Any, settings: Any, clients: int) -> None:
    statuses: list[int] = []

    def post(i: int) -> None:
        statuses.append(client.post("/api/v1/forms/newsletter", json=newsletter_body(email=f"r{i}@example.org")
                                    ).status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [202] * clients
    assert count(settings, Contact) == clients and count(settings, OutboxMessage) == clients
