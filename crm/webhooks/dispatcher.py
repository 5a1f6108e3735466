"""The per-process webhook dispatcher: lanes of POSTs, one endpoint each, fed in batches.

A lane claims a batch of one endpoint's due deliveries in one statement, POSTs them one after
another over a kept-alive connection (crm.webhooks.transport: one per thread and receiver), and
records the batch in one transaction; then it claims again, until the endpoint has nothing due. An endpoint gets at most `per_endpoint` lanes, and a
lane's batch is sized by how fast that endpoint answers, so a slow receiver holds few deliveries
and never more than a fraction of the lease, while a fast one is fed a hundred at a time. A lane
never touches another endpoint: a slow or dead receiver delays nobody else, and no email waits on
any of it (these are threads of their own, not worker slots).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from crm.config import Settings
from crm.db import session_scope, utcnow
from crm.webhooks import claims, delivery
from crm.webhooks.delivery import Outcome, Request
from crm.webhooks.transport import Transport

log = logging.getLogger(__name__)

MAX_BATCH = 100
# An endpoint answering faster than this keeps FAST_LANES per process (measured: more lanes only
# contend for the interpreter); a slow one gets up to `per_endpoint`, since its lanes mostly wait.
FAST_ANSWER = 0.1
FAST_LANES = 1
# A batch should take at most this share of the lease, so no claim runs out while its lane still works.
LEASE_SHARE = 0.25


@dataclass
class Dispatcher:
    threads: int = 32
    per_endpoint: int = delivery.PER_ENDPOINT
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _lanes: dict[int, int] = field(default_factory=dict)
    _pace: dict[int, float] = field(default_factory=dict)  # seconds per POST, a moving average
    _local: threading.local = field(default_factory=threading.local)
    _transports: list[Transport] = field(default_factory=list)  # every thread's, closed with the pool

    def _transport(self) -> Transport:
        """This thread's connections (kept alive across its lanes' deliveries)."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = delivery.new_transport()
            with self._lock:
                self._transports.append(http)
        return http

    def _batch_size(self, settings: Settings, endpoint_id: int) -> int:
        # An endpoint not heard from yet is assumed slow: a small first batch, then sized by what it did.
        pace = self._pace.get(endpoint_id, 1.0)
        return max(1, min(MAX_BATCH, int(settings.webhook_lease_seconds * LEASE_SHARE / max(pace, 1e-4))))

    def _lanes_wanted(self, endpoint_id: int) -> int:
        return FAST_LANES if self._pace.get(endpoint_id, 0.0) < FAST_ANSWER else self.per_endpoint

    def _note(self, endpoint_id: int, out: Outcome) -> None:
        seconds = out.duration_ms / 1000
        self._pace[endpoint_id] = 0.8 * self._pace.get(endpoint_id, seconds) + 0.2 * seconds

    def _claim(self, settings: Settings, endpoint_id: int) -> list[Request]:
        now = utcnow()
        lease = dt.timedelta(seconds=settings.webhook_lease_seconds)
        with session_scope(settings) as session:
            taken = claims.take(session, endpoint_id, now, lease, self._batch_size(settings, endpoint_id))
            return delivery.requests_for(session, endpoint_id, taken, now)

    def _post_batch(self, settings: Settings, batch: list[Request]) -> tuple[list[tuple[Request, Outcome]], list[int]]:
        """POST in order; after a connection failure the rest go back untried (each would wait a timeout)."""
        results: list[tuple[Request, Outcome]] = []
        for i, req in enumerate(batch):
            out = delivery.post(settings, req, self._transport())
            self._note(req.endpoint_id, out)
            results.append((req, out))
            if out.status is None:
                return results, [r.delivery_id for r in batch[i + 1:]]
        return results, []

    def _lane(self, settings: Settings, endpoint_id: int) -> int:
        tried = 0
        try:
            while batch := self._claim(settings, endpoint_id):
                started = time.monotonic()
                results, untried = self._post_batch(settings, batch)
                log.debug("endpoint %s: %d POSTs in %.2f s", endpoint_id, len(results), time.monotonic() - started)
                with session_scope(settings) as session:
                    delivery.record(session, settings, results, utcnow())
                    claims.release(session, untried)
                tried += len(results)
                if untried:
                    break
        except Exception:  # noqa: BLE001 - leases bring claimed rows back; keep the pool alive
            log.exception("webhook lane for endpoint %s", endpoint_id)
        finally:
            with self._lock:
                self._lanes[endpoint_id] -= 1
        return tried

    def dispatch(self, settings: Settings, *, wait: bool = False) -> dict[str, int]:
        """Fan out new events, free expired leases, and open a lane for each endpoint with work."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook")
        now = utcnow()
        with session_scope(settings) as session:
            fanned = delivery.fan_out(session)
            claims.expire_leases(session, now)
        with session_scope(settings) as session:
            busy = claims.endpoints_with_work(session, now)
        started: list[Future[int]] = []
        with self._lock:
            for endpoint_id in busy:
                if sum(self._lanes.values()) >= self.threads:
                    break
                if self._lanes.get(endpoint_id, 0) >= self._lanes_wanted(endpoint_id):
                    continue
                self._lanes[endpoint_id] = self._lanes.get(endpoint_id, 0) + 1
                started.append(self._pool.submit(self._lane, settings, endpoint_id))  # type: ignore[union-attr]
        tried = sum(f.result() for f in started) if wait else 0
        return {"fanned_out": fanned, "started": len(started), "tried": tried}

    def close(self) -> None:
        """Wait for the POSTs in flight (tests, the benchmark, a worker shutting down)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for http in self._transports:
                http.close()
            self._transports.clear()
            self._local = threading.local()


def run_until_idle(settings: Settings, dispatcher: Dispatcher, timeout: float = 30.0) -> None:
    """Dispatch and wait until nothing is due (tests and the benchmark's single-process runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = dispatcher.dispatch(settings, wait=True)
        if not summary["tried"] and not summary["fanned_out"]:
            return
    raise TimeoutError("webhook deliveries still due")


_process_dispatcher = Dispatcher()


def process_dispatcher() -> Dispatcher:
    return _process_dispatcher
