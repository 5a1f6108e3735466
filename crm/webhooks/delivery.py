"""Fan-out of events into deliveries, and signed delivery with retries, from the database.

The database holds everything: a lost wake-up call, a broker outage or a worker killed mid-POST
only delays a delivery (its lease runs out and the next dispatch takes it again). HTTP happens in a
small per-process thread pool, so the task that dispatches returns at once and a slow receiver
never holds a worker slot that email needs; each endpoint gets at most PER_ENDPOINT requests in
flight, so a slow or dead one cannot take the pool from the others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import delete, exists, insert, literal, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.config import Settings
from crm.db import is_postgres, session_scope, utcnow
from crm.errors import Invalid
from crm.events import service as events
from crm.events.models import Event
from crm.outbox import service as outbox
from crm.staff.models import Staff, StaffRole
from crm.webhooks import safety, signing
from crm.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

# SPEC 12's schedule after the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h in all).
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
TIMEOUT = 15.0
DISABLE_AFTER = dt.timedelta(days=3)
KEEP_LOG = dt.timedelta(days=30)
PER_ENDPOINT = 8
FANOUT_BATCH = 2000
_D = WebhookDelivery.__table__  # type: ignore[attr-defined]


# --- fan-out ------------------------------------------------------------------------------------


def fan_out(session: Session, limit: int = FANOUT_BATCH) -> int:
    """Turn unpublished events into one delivery per matching enabled endpoint (INSERT ... SELECT)."""
    batch = events.unpublished(session, limit)
    if is_postgres(session):
        batch = batch.with_for_update(skip_locked=True)  # two dispatchers share the work, never the rows
    ids = list(session.scalars(batch))
    if not ids:
        return 0
    lo, hi = ids[0], ids[-1]
    added = 0
    for ep_id, types in session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events)
                                        .where(WebhookEndpoint.enabled.is_(True))).all():
        chosen = select(literal(ep_id), Event.id, Event.contact_id, Event.type,
                        literal("msg_") + Event.id.cast(_D.c.webhook_id.type), literal(DeliveryState.pending),
                        literal(0), Event.occurred_at, Event.occurred_at
                        ).where(Event.id.in_(ids), Event.id.between(lo, hi), Event.type != events.TEST_TYPE)
        if "*" not in types:
            chosen = chosen.where(Event.type.in_(types))
        stmt = insert(_D).from_select(["endpoint_id", "event_id", "contact_id", "type", "webhook_id", "state",
                                       "attempts", "next_attempt_at", "created_at"], chosen)
        added += session.execute(stmt).rowcount or 0
    events.mark_published(session, ids)
    return added


# --- choosing and claiming ------------------------------------------------------------------------


def due(session: Session, now: dt.datetime, limit: int, skip_endpoints: set[int] | None = None,
        endpoint_id: int | None = None) -> list[int]:
    """Deliveries to try now: due, endpoint enabled, and no earlier event of the same contact still
    owed to the same endpoint (order per contact, SPEC 12)."""
    stmt = (select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookEndpoint.enabled.is_(True),
                   or_((WebhookDelivery.state == DeliveryState.pending) & (WebhookDelivery.next_attempt_at <= now),
                       (WebhookDelivery.state == DeliveryState.delivering) & (WebhookDelivery.lease_until < now)),
                   ~_earlier_owed())
            .order_by(WebhookDelivery.event_id).limit(limit))
    if skip_endpoints:
        stmt = stmt.where(WebhookDelivery.endpoint_id.not_in(skip_endpoints))
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(session.scalars(stmt))


def _earlier_owed() -> Any:
    earlier = aliased(WebhookDelivery)
    return exists().where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                          earlier.contact_id == WebhookDelivery.contact_id,
                          earlier.event_id < WebhookDelivery.event_id,
                          earlier.state.in_([DeliveryState.pending, DeliveryState.delivering]))


def claim(session: Session, delivery_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take one delivery if it is still due and nothing earlier of its contact is owed (checked here
    again, so a candidate list read a moment ago can never send out of order)."""
    result = session.execute(
        update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            or_((WebhookDelivery.state == DeliveryState.pending) & (WebhookDelivery.next_attempt_at <= now),
                (WebhookDelivery.state == DeliveryState.delivering) & (WebhookDelivery.lease_until < now)),
            ~_earlier_owed())
        .values(state=DeliveryState.delivering, lease_until=now + lease, attempts=WebhookDelivery.attempts + 1))
    return result.rowcount == 1


# --- one attempt --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    delivery_id: int
    endpoint_id: int
    url: str
    webhook_id: str
    body: str
    secrets: list[str]
    attempts: int


def body_of(event: Event) -> str:
    return json.dumps({"type": event.type, "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
                       "data": event.data}, separators=(",", ":"), ensure_ascii=False)


def prepare(session: Session, settings: Settings, delivery_id: int, now: dt.datetime) -> Request | None:
    """Claim one delivery and snapshot what to send; None if someone else has it or it is done."""
    if not claim(session, delivery_id, now, dt.timedelta(seconds=settings.webhook_lease_seconds)):
        return None
    d = session.get(WebhookDelivery, delivery_id)
    assert d is not None
    ep = session.get(WebhookEndpoint, d.endpoint_id)
    event = session.get(Event, d.event_id)
    assert ep is not None and event is not None
    secrets = [ep.secret]
    if ep.old_secret and ep.old_secret_until and ep.old_secret_until > now:
        secrets.append(ep.old_secret)
    return Request(delivery_id, ep.id, ep.url, d.webhook_id, body_of(event), secrets, d.attempts)  # type: ignore[arg-type]


@dataclass
class Outcome:
    status: int | None = None
    error: str | None = None
    response_bytes: int = 0
    duration_ms: int = 0


def post(settings: Settings, req: Request, client: httpx.Client) -> Outcome:
    """POST once: resolve and check the host now, connect to that checked address."""
    started = time.monotonic()
    out = Outcome()
    try:
        target = safety.check_url(req.url, settings.env == "production")
        ts = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "charity-crm-webhooks/1",
                   "webhook-id": req.webhook_id, "webhook-timestamp": str(ts),
                   "webhook-signature": signing.signature_header(req.secrets, req.webhook_id, ts, req.body),
                   "host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}"}
        url = httpx.URL(req.url)
        ip = f"[{target.ip}]" if ":" in target.ip else target.ip
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        with client.stream("POST", url.copy_with(host=ip.strip("[]")), content=req.body.encode(), headers=headers,
                           extensions=extensions) as resp:
            out.status = resp.status_code
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > 64 * 1024:  # nobody needs more of a receiver's answer than its size
                    break
            out.response_bytes = size
    except Invalid as exc:
        out.error = next(iter(exc.fields.values()), exc.message)
    except httpx.TimeoutException:
        out.error = f"timed out after {TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:500]
    out.duration_ms = int((time.monotonic() - started) * 1000)
    if out.error is None and out.duration_ms > TIMEOUT * 1000:
        # httpx's timeout is per read: a receiver trickling its answer must not stretch 15 s.
        out.error = f"answered after {out.duration_ms} ms, over {TIMEOUT:g} s"
    return out


def next_delay(attempts: int) -> float | None:
    """Seconds until the next try after `attempts` tries, with +-20 % jitter; None: give up."""
    if attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[attempts - 1]
    return base * random.uniform(0.8, 1.2)


def finish(session: Session, settings: Settings, req: Request, out: Outcome, now: dt.datetime) -> str:
    """Log the attempt and move the delivery and its endpoint on. Returns the delivery's new state."""
    if session.get(WebhookDelivery, req.delivery_id) is None:
        return "gone"  # its endpoint was deleted while the POST was in flight
    ok = out.status is not None and 200 <= out.status < 300 and out.error is None
    session.execute(insert(WebhookAttempt.__table__), {  # type: ignore[attr-defined]
        "delivery_id": req.delivery_id, "at": now, "status": out.status, "duration_ms": out.duration_ms,
        "error": None if ok else (out.error or f"HTTP {out.status} is not a 2xx")[:500],
        "response_bytes": out.response_bytes})
    ep = session.get(WebhookEndpoint, req.endpoint_id)
    mine = (WebhookDelivery.id == req.delivery_id) & (WebhookDelivery.state == DeliveryState.delivering)
    if ok:
        session.execute(update(WebhookDelivery).where(mine).values(
            state=DeliveryState.delivered, delivered_at=now, lease_until=None))
        # Not on every success: every thread writing the same endpoint row would queue on its lock.
        if ep is not None and (ep.failing_since is not None or ep.last_success_at is None
                               or now - ep.last_success_at > dt.timedelta(seconds=30)):
            ep.failing_since, ep.last_success_at = None, now
            session.add(ep)
        return DeliveryState.delivered
    delay = next_delay(req.attempts)
    state = DeliveryState.failed if delay is None else DeliveryState.pending
    session.execute(update(WebhookDelivery).where(mine).values(
        state=state, lease_until=None, next_attempt_at=now + dt.timedelta(seconds=delay or 0)))
    if ep is not None and ep.enabled:
        if out.status == 410:
            disable(session, settings, ep, "the receiver answered 410 Gone")
        else:
            ep.failing_since = ep.failing_since or now
            if now - ep.failing_since >= DISABLE_AFTER:
                disable(session, settings, ep, "no successful delivery for 3 days")
            session.add(ep)
    return state


def disable(session: Session, settings: Settings, ep: WebhookEndpoint, reason: str) -> list[int]:
    ep.enabled, ep.disabled_reason, ep.updated_at = False, reason, utcnow()
    session.add(ep)
    ids = []
    for email in session.scalars(select(Staff.email).where(Staff.role == StaffRole.admin)):
        mid = outbox.queue(session, "webhook-disabled", email,
                           {"endpoint": {"id": ep.id, "url": ep.url}, "reason": reason},
                           dedupe_key=f"webhook-disabled:{ep.id}:{email}:{ep.updated_at.isoformat()}")
        if mid:
            ids.append(mid)
    log.warning("webhook endpoint %s disabled: %s", ep.id, reason)
    return ids


def attempt(settings: Settings, delivery_id: int, client: httpx.Client | None = None) -> str:
    """Claim, POST and record one delivery. Safe to call any number of times."""
    with session_scope(settings) as session:
        req = prepare(session, settings, delivery_id, utcnow())
    if req is None:
        return "busy"
    own = client is None
    client = client or new_client()
    try:
        out = post(settings, req, client)
    finally:
        if own:
            client.close()
    with session_scope(settings) as session:
        return finish(session, settings, req, out, utcnow())


def new_client() -> httpx.Client:
    # No redirects: a 3xx is a failure (a redirect to an internal address would be the SSRF door).
    return httpx.Client(timeout=httpx.Timeout(TIMEOUT), follow_redirects=False, trust_env=False)


# --- the dispatcher: one per process ----------------------------------------------------------------


@dataclass
class Dispatcher:
    """Keeps up to `threads` POSTs in flight from this process, at most PER_ENDPOINT per endpoint."""

    threads: int = 32
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _busy: dict[int, int] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)
    _candidates: dict[int, deque[int]] = field(default_factory=dict)

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = new_client()
        return client

    def _run(self, settings: Settings, first: Request) -> int:
        """Deliver `first`, then keep taking this endpoint's next due delivery while there is one,
        so throughput does not wait for the next beat tick. Returns how many were tried."""
        req: Request | None = first
        tried = 0
        try:
            while req is not None:
                out = post(settings, req, self._client())
                tried += 1
                # Two transactions: a thread never holds row locks while it waits for the dispatcher's lock.
                with session_scope(settings) as session:
                    finish(session, settings, req, out, utcnow())
                with session_scope(settings) as session:
                    req = self._next_for(session, settings, req.endpoint_id)
        except Exception:  # noqa: BLE001 - the lease brings it back; log and keep the pool alive
            log.exception("webhook delivery %s", req.delivery_id if req else first.delivery_id)
        finally:
            with self._lock:
                self._busy[first.endpoint_id] -= 1
        return tried

    def _next_for(self, session: Session, settings: Settings, endpoint_id: int) -> Request | None:
        """The endpoint's next due delivery, from a candidate list refilled by one query per 200."""
        now = utcnow()
        for refill in (False, True):
            if refill:
                fresh = due(session, now, 200, endpoint_id=endpoint_id)
                with self._lock:
                    self._candidates[endpoint_id] = deque(fresh)
            while True:
                with self._lock:
                    queue = self._candidates.get(endpoint_id)
                    delivery_id = queue.popleft() if queue else None
                if delivery_id is None:
                    break
                req = prepare(session, settings, delivery_id, now)
                if req is not None:
                    return req
        return None

    def dispatch(self, settings: Settings, *, wait: bool = False, limit: int = 500) -> dict[str, int]:
        """Fan out new events, then start every due delivery there is room for."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook")
        with session_scope(settings) as session:
            fanned = fan_out(session)
        started: list[Future[int]] = []
        now = utcnow()
        with self._lock:
            full = {ep for ep, n in self._busy.items() if n >= PER_ENDPOINT}
            room = self.threads - sum(self._busy.values())
        if room > 0:
            with session_scope(settings) as session:
                candidates = due(session, now, min(limit, room * 4), full)
            for delivery_id in candidates:
                if len(started) >= room:
                    break
                with session_scope(settings) as session:
                    req = prepare(session, settings, delivery_id, now)
                if req is None:
                    continue
                with self._lock:
                    full_now = self._busy.get(req.endpoint_id, 0) >= PER_ENDPOINT
                    if not full_now:
                        self._busy[req.endpoint_id] = self._busy.get(req.endpoint_id, 0) + 1
                if full_now:
                    _release(settings, req)  # hand it back untouched (minus the try it did not get)
                    continue
                started.append(self._pool.submit(self._run, settings, req))  # type: ignore[union-attr]
        if wait:
            for f in started:
                f.result()
        return {"fanned_out": fanned, "started": len(started)}

    def close(self) -> None:
        """Wait for the POSTs in flight (tests, the benchmark, a worker shutting down)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _release(settings: Settings, req: Request) -> None:
    with session_scope(settings) as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == req.delivery_id,
                                                      WebhookDelivery.state == DeliveryState.delivering)
                        .values(state=DeliveryState.pending, lease_until=None,
                                attempts=WebhookDelivery.attempts - 1))


def run_until_idle(settings: Settings, dispatcher: Dispatcher, timeout: float = 30.0) -> None:
    """Dispatch and wait until nothing is due (tests and the benchmark's single-process runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = dispatcher.dispatch(settings, wait=True)
        if not summary["started"] and not summary["fanned_out"]:
            return
    raise TimeoutError("webhook deliveries still due")


def cleanup(session: Session, now: dt.datetime | None = None) -> int:
    """The attempt log is kept 30 days; delivered deliveries older than that go with it."""
    cutoff = (now or utcnow()) - KEEP_LOG
    n = session.execute(delete(WebhookAttempt).where(WebhookAttempt.at < cutoff)).rowcount or 0
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.state.in_([DeliveryState.delivered,
                                                                             DeliveryState.failed]),
                                                  WebhookDelivery.created_at < cutoff,
                                                  ~exists().where(WebhookAttempt.delivery_id == WebhookDelivery.id)))
    return n


_process_dispatcher = Dispatcher()


def process_dispatcher() -> Dispatcher:
    return _process_dispatcher
