"""Group commit for the public intake: concurrent signups share one transaction.

Under load most of a signup's cost on the database is its commit (a WAL flush) and the round trips
around it; sixteen signups that arrive together need one commit, not sixteen. `GroupCommit.run(work)`
is called from the request's worker thread and returns only after `work`'s rows are committed, so
a 202 still means "on disk" (SPEC 8); it never returns for a group that did not commit.

- A caller whose signup is queued and finds a free slot (at most `max_in_flight` groups run at
  once) takes up to `max_group` queued signups, oldest first, and runs them in one session, one
  after the other, then commits; the others wait. No thread of its own, no timer: under light load
  a group is one signup and nothing waits for company.
- If any member raises, or the commit fails (a deadlock with the other group in flight, a broken
  connection), the whole group is rolled back and each member is run again alone in its own
  transaction: one bad signup never fails or loses another's, and each caller gets its own result
  or its own exception.
- Wake-up calls (crm.queue) are published on the commit that holds the rows, as for any session.

Callers validate before they join a group (an invalid post must not cost its group a rerun);
`work` should only write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from crm.config import Settings
from crm.db import session_scope

log = logging.getLogger(__name__)

Work = Callable[[Session], Any]
_UNSET: Any = object()


@dataclass(eq=False)
class _Job:
    work: Work
    finished: bool = False
    result: Any = None  # set to _UNSET until the work has run
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, settings: Settings, *, max_group: int = 16, max_in_flight: int = 2) -> None:
        self.settings, self.max_group, self.max_in_flight = settings, max_group, max_in_flight
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._in_flight = 0
        self.groups = 0  # groups committed together, and members rerun alone (for tests and figures)
        self.reruns = 0

    def run(self, work: Work) -> Any:
        """`work(session)` committed (with whatever group it joined); its result, or its own exception."""
        job = _Job(work, result=_UNSET)
        with self._cond:
            self._queue.append(job)
            while not job.finished:
                if self._queue and self._in_flight < self.max_in_flight:
                    group, self._queue = self._queue[:self.max_group], self._queue[self.max_group:]
                    self._in_flight += 1
                    self._cond.release()
                    try:
                        self._run_group(group)
                    finally:
                        self._cond.acquire()
                        self._in_flight -= 1
                        for member in group:
                            if member.result is _UNSET and member.error is None:  # never lose a caller
                                member.error = RuntimeError("the signup group stopped before this signup ran")
                            member.finished = True
                        self._cond.notify_all()
                else:
                    self._cond.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _run_group(self, group: list[_Job]) -> None:
        if len(group) > 1:
            try:
                results = []
                with session_scope(self.settings) as session:
                    for member in group:
                        results.append(member.work(session))
            except Exception as exc:  # noqa: BLE001 - rolled back; each member is retried on its own
                log.info("a group of %d signups failed (%s); running each alone", len(group), exc)
            else:
                for member, result in zip(group, results, strict=True):
                    member.result = result
                self.groups += 1
                return
            self.reruns += len(group)
        for member in group:
            try:
                with session_scope(self.settings) as session:
                    member.result = member.work(session)
            except BaseException as exc:  # noqa: BLE001 - handed to that member's caller
                member.error = exc
