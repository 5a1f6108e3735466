"""Wake-up calls to the workers: published after the session's commit, by construction.

The database holds the work; the broker only says "look now". `publish(session, task, *args)`
remembers the call on the session and sends it when (and only when) that session commits, so
no caller can wake a worker for rows it has not written yet, or for rows rolled back. The same
call made twice in one transaction goes out once.

Which broker is used is not this floor's business: the process installs a `Publisher` at start
(`create_app` and the CLI a Celery one from `crm.celery_publisher`, the worker its own app's,
tests a `MemoryPublisher`). Publishing may fail (broker down): that is logged and left to the
periodic sweeps, which find the rows by their state. Nothing here ever raises to the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SEND_OUTBOX = "worker.tasks.send_outbox_message"
IMPORT_CONTACTS = "worker.tasks.import_contacts"
PLAN_CAMPAIGN = "worker.tasks.plan_campaign"
SEND_CAMPAIGN = "worker.tasks.send_campaign"

_PENDING = "crm.queue.pending"


class Publisher(Protocol):
    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        """Hand one wake-up call to the broker; False when it could not (never raises)."""
        ...


class NullPublisher:
    """Until a process installs its publisher: nothing is sent, the sweeps find the work."""

    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        log.debug("no publisher installed; %s%r left to the sweep", task, args)
        return False


class MemoryPublisher:
    """For tests: remembers what would have gone to the broker, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        self.sent.append((task, args))
        return True

    def of(self, task: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.sent if name == task]


class CoalescingPublisher:
    """At most one outbox wake-up per `window` seconds; every other call passes straight through.

    An outbox send task delivers its own message and then drains everything due, so during a burst
    of signups one wake-up per window does the work of all of them (the database holds the rows;
    the broker only says "look now"). The first call after a quiet window goes out at once; calls
    inside the window are remembered and the last of them goes out when the window ends (a
    trailing wake-up), so the last signup of a burst is still woken for: it is sent after every
    coalesced commit, so its drain sees their rows. Should that trailing call be lost (the process
    stops within the window, or the broker is down), the periodic sweep sends the rows, as it does
    for any lost wake-up.
    """

    def __init__(self, inner: Publisher, window: float = 0.05, tasks: Iterable[str] = (SEND_OUTBOX,),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.window, self.tasks, self.clock = inner, window, frozenset(tasks), clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # task -> when its last wake-up went out
        self._held: dict[str, tuple[Any, ...]] = {}  # task -> the newest args waiting for the window's end

    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        if task not in self.tasks:
            return self.inner.send(task, args)
        with self._lock:
            if task in self._held:  # a trailing wake-up is already due: it will carry the newest call
                self._held[task] = args
                return True
            wait = self._last.get(task, float("-inf")) + self.window - self.clock()
            if wait > 0:
                self._held[task] = args
                timer = threading.Timer(wait, self._trailing, (task,))
                timer.daemon = True
                timer.start()
                return True
            self._last[task] = self.clock()
        return self.inner.send(task, args)

    def _trailing(self, task: str) -> None:
        with self._lock:
            args = self._held.pop(task)
            self._last[task] = self.clock()
        try:
            if not self.inner.send(task, args):
                log.warning("trailing wake-up %s%r not sent; the sweep will pick the rows up", task, args)
        except Exception as exc:  # noqa: BLE001 - a timer thread has no caller to raise to
            log.warning("trailing wake-up %s%r failed (the sweep will pick the rows up): %s", task, args, exc)


_installed: Publisher = NullPublisher()


def install(publisher: Publisher) -> Publisher:
    """Make `publisher` the process's broker; returns the one it replaces (tests put it back)."""
    global _installed
    previous, _installed = _installed, publisher
    return previous


def installed() -> Publisher:
    return _installed


def publish(session: Session, task: str, *args: Any, copies: int = 1) -> None:
    """Send `task(*args)` once this session commits; dropped if it rolls back.

    `copies` wakes that many workers (a campaign's parallel senders); repeated calls within one
    transaction coalesce to the largest number asked for.
    """
    pending: dict[tuple[str, tuple[Any, ...]], int] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
        event.listen(session, "after_commit", _flush)
        event.listen(session, "after_rollback", _drop)
    key = (task, args)
    pending[key] = max(pending.get(key, 0), copies)


def publish_outbox(session: Session, ids: Iterable[int]) -> None:
    for message_id in ids:
        publish(session, SEND_OUTBOX, message_id)


def _flush(session: Session) -> None:
    pending = session.info.get(_PENDING) or {}
    calls, session.info[_PENDING] = list(pending.items()), {}
    publisher = _installed
    for (task, args), copies in calls:
        for _ in range(copies):
            try:
                sent = publisher.send(task, args)
            except Exception as exc:  # noqa: BLE001 - a publisher that raises must not undo a commit
                log.warning("publisher failed on %s%r: %s", task, args, exc)
                sent = False
            if not sent:
                return  # the broker is down: the rest would fail too; the sweeps recover it all


def _drop(session: Session) -> None:
    session.info[_PENDING] = {}
