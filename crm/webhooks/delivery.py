"""Fan-out of events into deliveries, and signed delivery with retries, from the database.

The database holds everything: a lost wake-up call, a broker outage or a worker killed mid-POST
only delays a delivery (its lease runs out and the next dispatch takes it again). HTTP happens in a
small per-process thread pool (crm.webhooks.dispatcher), so the task that dispatches returns at once
and a slow receiver never holds a worker slot that email needs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, exists, insert, literal, select, text, update
from sqlmodel import Session

from crm.config import Settings
from crm.db import is_postgres, utcnow
from crm.errors import Invalid
from crm.events import service as events
from crm.events.models import Event
from crm.outbox import service as outbox
from crm.staff.models import Staff, StaffRole
from crm.webhooks import signing, transport
from crm.webhooks.claims import one_of
from crm.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

# SPEC 12's schedule after the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h in all).
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
TIMEOUT = 15.0
MAX_RESPONSE = 64 * 1024  # nobody needs more of a receiver's answer than its size
DISABLE_AFTER = dt.timedelta(days=3)
KEEP_LOG = dt.timedelta(days=30)
PER_ENDPOINT = 8
FANOUT_BATCH = 2000
# After this many new deliveries (counted per process) the table's statistics are refreshed at once:
# planned on stale ones (an empty table) the claim's order check becomes a nested loop over the
# whole backlog, seconds to minutes per claim, long before autovacuum gets round to it.
ANALYZE_AFTER = 1000
_added_since_analyze = 0
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
        # SQLAlchemy 2.1 reports -1 for an INSERT ... SELECT unless asked to keep the count; without
        # it the count below went negative and the statistics were never refreshed.
        added += session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount or 0
    events.mark_published(session, ids)
    _refresh_statistics(session, added)
    return added


def _refresh_statistics(session: Session, added: int) -> None:
    global _added_since_analyze  # noqa: PLW0603 - a per-process counter; losing it on restart is harmless
    _added_since_analyze += added
    if _added_since_analyze >= ANALYZE_AFTER and is_postgres(session):
        session.execute(text("ANALYZE webhook_delivery"))
        _added_since_analyze = 0


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


def requests_for(session: Session, endpoint_id: int, claimed: list[tuple[int, int, str, int]],
                 now: dt.datetime) -> list[Request]:
    """What to send for deliveries just claimed (crm.webhooks.claims.take): two queries per batch."""
    ep = session.get(WebhookEndpoint, endpoint_id)
    if ep is None or not claimed:
        return []
    secrets = [ep.secret]
    if ep.old_secret and ep.old_secret_until and ep.old_secret_until > now:
        secrets.append(ep.old_secret)
    events_by_id = {e.id: e for e in session.scalars(select(Event).where(one_of(session, Event.id, [c[1] for c in claimed])))}
    return [Request(delivery_id, ep.id, ep.url, webhook_id, body_of(events_by_id[event_id]), secrets,  # type: ignore[arg-type]
                    attempts) for delivery_id, event_id, webhook_id, attempts in claimed]


@dataclass
class Outcome:
    status: int | None = None
    error: str | None = None
    response_bytes: int = 0
    duration_ms: int = 0


def post(settings: Settings, req: Request, http: transport.Transport) -> Outcome:
    """POST once over the lane's connection to this receiver; a new connection resolves and checks the
    host first and goes to that checked address (crm.webhooks.transport)."""
    started = time.monotonic()
    out = Outcome()
    try:
        ts = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "charity-crm-webhooks/1",
                   "webhook-id": req.webhook_id, "webhook-timestamp": str(ts),
                   "webhook-signature": signing.signature_header(req.secrets, req.webhook_id, ts, req.body)}
        resp = http.post(req.url, headers, req.body.encode(), production=settings.env == "production")
        out.status, out.response_bytes = resp.status, resp.size
    except Invalid as exc:
        out.error = next(iter(exc.fields.values()), exc.message)
    except TimeoutError:
        out.error = f"timed out after {TIMEOUT:g} s"
    except (OSError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:500]
    out.duration_ms = int((time.monotonic() - started) * 1000)
    if out.error is None and out.duration_ms > TIMEOUT * 1000:
        out.error = f"answered after {out.duration_ms} ms, over {TIMEOUT:g} s"
    return out


def next_delay(attempts: int) -> float | None:
    """Seconds until the next try after `attempts` tries, with +-20 % jitter; None: give up."""
    if attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[attempts - 1]
    return base * random.uniform(0.8, 1.2)


def _ok(out: Outcome) -> bool:
    return out.status is not None and 200 <= out.status < 300 and out.error is None


def record(session: Session, settings: Settings, results: list[tuple[Request, Outcome]], now: dt.datetime) -> None:
    """Log a batch of attempts and move the deliveries and their endpoint on, in a few statements:
    one insert for the log, one update for the successes; failures (rare) one by one."""
    if not results:
        return
    live = set(session.scalars(select(WebhookDelivery.id).where(
        one_of(session, WebhookDelivery.id, [req.delivery_id for req, _ in results]))))
    results = [(req, out) for req, out in results if req.delivery_id in live]  # endpoint deleted mid-flight
    if not results:
        return
    session.execute(insert(WebhookAttempt.__table__), [  # type: ignore[attr-defined]
        {"delivery_id": req.delivery_id, "at": now, "status": out.status, "duration_ms": out.duration_ms,
         "error": None if _ok(out) else (out.error or f"HTTP {out.status} is not a 2xx")[:500],
         "response_bytes": out.response_bytes} for req, out in results])
    delivered = [req.delivery_id for req, out in results if _ok(out)]
    if delivered:
        session.execute(update(WebhookDelivery).where(one_of(session, WebhookDelivery.id, delivered),
                                                      WebhookDelivery.state == DeliveryState.delivering)
                        .values(state=DeliveryState.delivered, delivered_at=now, lease_until=None))
    ep = session.get(WebhookEndpoint, results[0][0].endpoint_id)
    # Not on every success: every thread writing the same endpoint row would queue on its lock.
    if delivered and ep is not None and (ep.failing_since is not None or ep.last_success_at is None
                                         or now - ep.last_success_at > dt.timedelta(seconds=30)):
        ep.failing_since, ep.last_success_at = None, now
        session.add(ep)
    failed = [(req, out) for req, out in results if not _ok(out)]
    if failed:
        _failed(session, settings, failed, ep, now)


def _failed(session: Session, settings: Settings, failed: list[tuple[Request, Outcome]],
            ep: WebhookEndpoint | None, now: dt.datetime) -> None:
    """Each failure waits its own jittered step of the schedule (one executemany), or fails for good."""
    rows = []
    for req, _ in failed:
        delay = next_delay(req.attempts)
        rows.append({"d_id": req.delivery_id, "d_state": DeliveryState.failed if delay is None else DeliveryState.pending,
                     "d_next": now + dt.timedelta(seconds=delay or 0)})
    session.execute(update(_D).where(_D.c.id == bindparam("d_id"), _D.c.state == DeliveryState.delivering)
                    .values(state=bindparam("d_state"), lease_until=None, next_attempt_at=bindparam("d_next")), rows)
    if ep is None or not ep.enabled:
        return
    if any(out.status == 410 for _, out in failed):
        disable(session, settings, ep, "the receiver answered 410 Gone")
        return
    ep.failing_since = ep.failing_since or now
    if now - ep.failing_since >= DISABLE_AFTER:
        disable(session, settings, ep, "no successful delivery for 3 days")
    session.add(ep)


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


def new_transport() -> transport.Transport:
    # No redirects: a 3xx is a failure (a redirect to an internal address would be the SSRF door).
    return transport.Transport(timeout=TIMEOUT, max_response=MAX_RESPONSE)


def cleanup(session: Session, now: dt.datetime | None = None) -> int:
    """The attempt log is kept 30 days; delivered deliveries older than that go with it."""
    cutoff = (now or utcnow()) - KEEP_LOG
    n = session.execute(delete(WebhookAttempt).where(WebhookAttempt.at < cutoff)).rowcount or 0
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.state.in_([DeliveryState.delivered,
                                                                             DeliveryState.failed]),
                                                  WebhookDelivery.created_at < cutoff,
                                                  ~exists().where(WebhookAttempt.delivery_id == WebhookDelivery.id)))
    return n
