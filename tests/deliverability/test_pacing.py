"""CRM_DOMAIN_RATES measured at a real SMTP server (aiosmtpd on loopback), across two workers.

Each paced domain stays within its rate (±10 % over 10 s) while mail to the other domains fills
the rest of CRM_SEND_RATE; a domain that defers (421 4.7.0) is halved at once and nothing else
slows down; the halving holds a minute, then recovers step by step.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import insert, select

from crm.campaigns import domain_rates, pipeline, planning, service
from crm.campaigns.domain_rates import HOLD, RECOVERY, LocalDomainLimiter, RedisDomainLimiter
from crm.campaigns.domain_rates import PACING as DOMAIN_PACING
from crm.campaigns.models import Delivery
from crm.campaigns.ratelimit import PACING
from crm.contacts.models import Contact, ContactStatus, Subscription
from crm.db import session_scope, utcnow
from tests.conftest import make_settings

# SQLite commits each message on its own (a few ms of fsync each, one writer at a time): slower
# rates there, the production ones on PostgreSQL.
FAST_DB = os.environ.get("CRM_TEST_DATABASE_URL") is not None
SEND_RATE = 40.0 if FAST_DB else 6.0
RATES = {"slow-a.test": 10.0, "slow-b.test": 5.0} if FAST_DB else {"slow-a.test": 2.4, "slow-b.test": 1.2}
A, B = RATES["slow-a.test"], RATES["slow-b.test"]
# More mail for the paced domains than their caps let through, so the caps are what is measured.
# (a half of it for slow-a, whose cap is at most 40 % of the global rate; 2/7 for slow-b, capped at 20 %).
MIX = ["slow-a.test", "slow-b.test", "slow-a.test", "fast.test", "slow-a.test", "slow-b.test", "slow-a.test",
       "other.test", "slow-a.test", "slow-b.test", "slow-a.test", "fast.test", "slow-a.test", "slow-b.test"]
PEOPLE = 2000 if FAST_DB else 700
# When the deferring domain starts saying "slow down": later on SQLite, whose slower rates need a
# longer window before it for a count of more than a handful.
DEFER_AT = 2.0 if FAST_DB else 4.0


def _people(settings: Any, n: int, domains: list[str]) -> None:
    """n confirmed newsletter readers, their domains taken round-robin from `domains`."""
    now = utcnow()
    with session_scope(settings) as s:
        rows = [{"email": f"r{i}@{domains[i % len(domains)]}", "email_key": f"r{i}@{domains[i % len(domains)]}",
                 "email_hash": f"h{i}", "status": ContactStatus.active, "first_name": f"R{i}", "last_name": "",
                 "phone": "", "postal_code": "", "language": "en", "bereaved": False, "soft_bounces": 0,
                 "created_at": now, "updated_at": now} for i in range(n)]
        s.execute(insert(Contact), rows)
        ids = s.scalars(select(Contact.id)).all()
        s.execute(insert(Subscription), [{"contact_id": i, "list": "newsletter", "state": "confirmed",
                                          "created_at": now, "updated_at": now, "confirmed_at": now} for i in ids])


def _campaign(settings: Any) -> int:
    with session_scope(settings) as s:
        cid = service.create(s, settings, {"name": "Pace", "subject": "Hello {{ contact.first_name }}",
                                           "body_html": "<p>News for {{ contact.first_name }}.</p>"},
                             "editor@staff.example.org").id
        assert service.launch(s, settings, cid)[1]
    planning.plan(settings, cid)
    return cid  # type: ignore[return-value]


def _send_in_parallel(settings: Any, cid: int, seconds: float, workers: int = 2) -> list[Any]:
    summaries: list[Any] = []
    threads = [threading.Thread(target=lambda: summaries.append(
        pipeline.send_some(settings, cid, max_seconds=seconds, batch_size=200))) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    return summaries


def _window(smtp: Any, start: float, length: float) -> Counter[str]:
    with smtp.lock:
        pairs = list(zip(smtp.received_at, smtp.envelopes, strict=True))
    return Counter(rcpts[0].rpartition("@")[2] for at, (_, rcpts) in pairs if start <= at < start + length)


def _live(settings: Any, smtp: Any, tmp_path: Any, redis: str | None, **extra: Any) -> Any:
    return make_settings(tmp_path, settings.database_url, mail_backend="smtp", smtp_host="127.0.0.1",
                         smtp_port=smtp.port, send_rate=SEND_RATE, redis_url=redis,
                         domain_rates=",".join(f"{d}={r:g}" for d, r in RATES.items()), **extra)


@pytest.mark.timing
@pytest.mark.parametrize("shared", ["in-process", pytest.param("redis", marks=pytest.mark.integration)])
def test_each_domain_keeps_its_rate_across_two_workers_and_others_fill_the_rest(
        settings, smtp, tmp_path, request, shared):
    redis = request.getfixturevalue("redis_url") if shared == "redis" else None
    live = _live(settings, smtp, tmp_path, redis)
    _people(live, PEOPLE, MIX)
    cid = _campaign(live)
    summaries = _send_in_parallel(live, cid, seconds=12.5)
    assert len(summaries) == 2 and all(s.sent > 0 for s in summaries)  # both workers sent
    first = min(smtp.received_at)
    got = _window(smtp, first + 1.0, 10.0)
    for domain, rate in RATES.items():
        assert rate * 10 * 0.9 <= got[domain] <= rate * 10 * 1.1, (domain, got)
    # Mail to the unpaced domains never waited: it used the rest of the global rate. (20 % below: the
    # global limiter gives up a slot a busy sender is late for, and this machine is shared.)
    rest = SEND_RATE * PACING * 10 - got["slow-a.test"] - got["slow-b.test"]
    unpaced = got["fast.test"] + got["other.test"]
    assert rest * 0.8 <= unpaced <= rest * 1.1, got
    assert got["fast.test"] > 1.5 * got["other.test"] > 0  # in the mix's proportion (2:1 less a bit): nobody starved
    # Nobody got two copies: put-off rows went back to the queue, not out twice.
    with smtp.lock:
        rcpts = Counter(r[0] for _, r in smtp.envelopes)
    assert set(rcpts.values()) == {1}


@pytest.mark.timing
def test_a_deferring_domain_is_halved_and_nothing_else_slows_down(settings, smtp, tmp_path):
    live = _live(settings, smtp, tmp_path, None)
    deferrals = {"n": 0}
    lock = threading.Lock()

    def fault(rcpt: str) -> str | None:
        # slow-a.test says "slow down" twice, DEFER_AT seconds in; then accepts everything again.
        if rcpt.endswith("@slow-a.test") and smtp.received_at and smtp.received_at[-1] - smtp.received_at[0] > DEFER_AT:
            with lock:
                if deferrals["n"] < 2:
                    deferrals["n"] += 1
                    return "421 4.7.0 Try again later, you are sending too fast"
        return None

    smtp.fault = fault
    _people(live, PEOPLE, MIX)
    cid = _campaign(live)
    summaries = _send_in_parallel(live, cid, seconds=DEFER_AT + 10.5)
    assert sum(s.deferred for s in summaries) == 2
    first = min(smtp.received_at)
    lead = DEFER_AT - 0.2
    before, after = _window(smtp, first + 0.2, lead), _window(smtp, first + DEFER_AT + 1.5, 9.0)
    # Before: its rate. After the deferral: half of it, for the rest of the run (the hold is a minute).
    # (Counts of a few dozen: one message either way is several per cent, hence 15 %.)
    assert A * lead * 0.75 <= before["slow-a.test"] <= A * lead * 1.2, before
    assert A / 2 * 9 * 0.85 <= after["slow-a.test"] <= A / 2 * 9 * 1.15, after
    assert B * 9 * 0.85 <= after["slow-b.test"] <= B * 9 * 1.15, after  # the other paced domain: untouched
    rest = SEND_RATE * PACING * 9 - after["slow-a.test"] - after["slow-b.test"]
    assert rest * 0.85 <= after["fast.test"] + after["other.test"] <= rest * 1.15, after
    with smtp.lock:  # the deferred messages were retried, and nobody got two copies
        rcpts = Counter(r[0] for _, r in smtp.envelopes)
    assert set(rcpts.values()) == {1}
    with session_scope(live) as s:
        assert not s.scalars(select(Delivery).where(Delivery.status == "failed")).all()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_halving_holds_a_minute_then_recovers_gradually():
    clock = Clock()
    limiter = LocalDomainLimiter(clock)
    assert limiter.rate("gmail.com", 20) == 20
    assert limiter.defer("gmail.com", 20) == 10
    assert limiter.defer("gmail.com", 20) == 10  # the same "slow down" heard by several messages: once
    assert limiter.slowed() == {"gmail.com"}
    clock.now += HOLD - 1
    assert limiter.rate("gmail.com", 20) == 10  # still halved just before the minute is up
    clock.now += 1 + RECOVERY / 2
    assert 10 < limiter.rate("gmail.com", 20) < 20  # recovering, not back at once
    clock.now += RECOVERY / 2
    assert limiter.rate("gmail.com", 20) == pytest.approx(20)
    assert limiter.slowed() == set()
    # A second deferral while recovering halves what the rate is then, and holds again.
    clock.now += 100
    limiter.defer("gmail.com", 20)
    clock.now += HOLD + RECOVERY / 2 + 10
    mid = limiter.rate("gmail.com", 20)
    limiter.defer("gmail.com", 20)
    assert limiter.rate("gmail.com", 20) == pytest.approx(mid / 2)


def test_slots_are_spaced_by_the_rate_in_force():
    clock = Clock()
    limiter = LocalDomainLimiter(clock)
    interval = 1 / (10 * DOMAIN_PACING)
    assert limiter.try_reserve("a.test", 10, horizon=0.01) == (True, 0.0)
    ok, wait = limiter.try_reserve("a.test", 10, horizon=0.01)  # the next slot is too far: nothing taken
    assert not ok and wait == pytest.approx(interval)
    clock.now += interval
    assert limiter.try_reserve("a.test", 10, horizon=0.01)[0]
    limiter.defer("a.test", 10)
    clock.now += interval
    assert limiter.try_reserve("a.test", 10, horizon=0.01)[0]  # this slot was booked at the old spacing ...
    assert limiter.try_reserve("a.test", 10, horizon=10)[1] == pytest.approx(2 * interval)  # ... the next: double
    # A slot missed while the sender was busy can still be had, but never two: no burst.
    clock.now += 10
    assert limiter.try_reserve("b.test", 10, horizon=0)[0]
    assert limiter.try_reserve("b.test", 10, horizon=0) == (False, pytest.approx(interval))


@pytest.mark.timing
@pytest.mark.integration
def test_redis_shares_the_slow_down_between_workers_and_recovers(redis_url, monkeypatch):
    import uuid

    monkeypatch.setattr(domain_rates, "HOLD", 0.5)
    monkeypatch.setattr(domain_rates, "RECOVERY", 0.5)
    monkeypatch.setattr(domain_rates, "DEBOUNCE", 0.2)
    namespace = f"t{uuid.uuid4().hex[:8]}"
    one, two = RedisDomainLimiter(redis_url, namespace), RedisDomainLimiter(redis_url, namespace)
    assert one.defer("gmail.com", 20) == pytest.approx(10)
    assert two.rate("gmail.com", 20) == pytest.approx(10)  # the other worker sees it
    assert "gmail.com" in two.slowed()
    import time

    time.sleep(0.5 + 0.25)
    assert 10 < two.rate("gmail.com", 20) < 20
    time.sleep(0.4)
    assert two.rate("gmail.com", 20) == pytest.approx(20)
    assert two.try_reserve("gmail.com", 20, horizon=1)[0]
    assert not one.try_reserve("gmail.com", 20, horizon=0.0)[0]  # the slot the other took is shared
