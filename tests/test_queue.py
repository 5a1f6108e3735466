"""crm.queue: wake-up calls leave after the commit, never for a rollback, once per transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from crm import queue
from crm.db import session_scope
from crm.outbox import service as outbox


def test_published_only_when_the_session_commits(settings: Any, published: queue.MemoryPublisher) -> None:
    with session_scope(settings) as s:
        queue.publish(s, "worker.tasks.noop", 1)
        assert published.sent == []  # nothing before the rows are there for the worker to see
    assert published.sent == [("worker.tasks.noop", (1,))]


def test_dropped_when_the_session_rolls_back(settings: Any, published: queue.MemoryPublisher) -> None:
    with pytest.raises(RuntimeError), session_scope(settings) as s:
        outbox.queue(s, "welcome", "a@example.org", {})
        raise RuntimeError("the transaction fails")
    with session_scope(settings) as s:
        pass
    assert published.sent == []


def test_repeats_in_one_transaction_coalesce(settings: Any, published: queue.MemoryPublisher) -> None:
    with session_scope(settings) as s:
        for _ in range(3):
            queue.publish(s, queue.SEND_CAMPAIGN, 7)
        queue.publish(s, queue.SEND_CAMPAIGN, 7, copies=2)
        queue.publish(s, queue.PLAN_CAMPAIGN, 7)
    assert published.of(queue.SEND_CAMPAIGN) == [(7,), (7,)]
    assert published.of(queue.PLAN_CAMPAIGN) == [(7,)]


def test_an_outbox_row_wakes_its_sender_on_commit(settings: Any, published: queue.MemoryPublisher) -> None:
    with session_scope(settings) as s:
        mid = outbox.queue(s, "welcome", "a@example.org", {})
    assert published.of(queue.SEND_OUTBOX) == [(mid,)]


def test_a_failing_broker_never_undoes_the_commit(settings: Any) -> None:
    class Down:
        calls = 0

        def send(self, task: str, args: tuple[Any, ...]) -> bool:
            Down.calls += 1
            return False

    previous = queue.install(Down())
    try:
        with session_scope(settings) as s:
            ids = [outbox.queue(s, "welcome", f"p{i}@example.org", {}) for i in range(3)]
    finally:
        queue.install(previous)
    assert Down.calls == 1  # the first refusal stops the rest: the sweep finds them all
    with session_scope(settings) as s:
        assert outbox.due(s, grace=dt.timedelta(0)) == ids


def test_an_empty_transaction_still_delivers_a_hand_over(settings: Any, published: queue.MemoryPublisher) -> None:
    with session_scope(settings) as s:
        queue.publish(s, queue.SEND_CAMPAIGN, 3)  # the send task's hand-over: no rows written
    assert published.of(queue.SEND_CAMPAIGN) == [(3,)]
