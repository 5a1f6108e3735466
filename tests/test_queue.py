"""crm.queue: wake-up calls leave after the commit, never for a rollback, once per transaction."""

from __future__ import annotations

import datetime as dt
import time
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


# --- coalesced outbox wake-ups (the API's publisher) ---------------------------------------------


def test_outbox_wakeups_coalesce_to_one_per_window_and_the_last_is_sent() -> None:
    inner = queue.MemoryPublisher()
    pub = queue.CoalescingPublisher(inner, window=0.2)
    for mid in range(1, 51):
        assert pub.send(queue.SEND_OUTBOX, (mid,)) is True
    assert inner.of(queue.SEND_OUTBOX) == [(1,)]  # the leading edge goes at once
    pub.send(queue.PLAN_CAMPAIGN, (7,))  # other tasks are never held back
    assert inner.of(queue.PLAN_CAMPAIGN) == [(7,)]
    _wait_for(lambda: len(inner.of(queue.SEND_OUTBOX)) == 2)
    assert inner.of(queue.SEND_OUTBOX) == [(1,), (50,)]  # the trailing edge carries the newest call
    time.sleep(0.3)
    assert len(inner.of(queue.SEND_OUTBOX)) == 2  # nothing more without new calls
    assert pub.send(queue.SEND_OUTBOX, (51,)) is True  # after a quiet window: at once again
    assert inner.of(queue.SEND_OUTBOX)[-1] == (51,)


def test_a_burst_of_signups_gets_few_wakeups_and_the_last_one_is_woken_for(
        settings: Any, published: queue.MemoryPublisher) -> None:
    from crm.app import create_app
    from crm.forms import service as forms
    from crm.origin import RequestMeta
    from tests.helpers import newsletter_body

    create_app(settings, publisher=published)  # installs the coalescing publisher around `published`
    assert isinstance(queue.installed(), queue.CoalescingPublisher)
    window = queue.installed().window  # type: ignore[attr-defined]
    ids: list[int] = []
    started = time.monotonic()
    for i in range(25):
        with session_scope(settings) as s:
            ids += forms.submit_newsletter(s, settings, newsletter_body(email=f"burst{i}@example.org"),
                                           RequestMeta("127.0.0.1", "pytest"))
    elapsed = time.monotonic() - started
    assert len(ids) == 25
    _wait_for(lambda: published.of(queue.SEND_OUTBOX)[-1:] == [(ids[-1],)])  # no lost wake-up
    sent = published.of(queue.SEND_OUTBOX)
    assert len(sent) <= 2 + elapsed / window < 25, (len(sent), elapsed)
    assert len(sent) < len(ids)


def _wait_for(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
