"""The global send pacer: a worker that falls behind gives up its stale slots instead of bursting."""

from __future__ import annotations

import time

from crm.campaigns.ratelimit import LATE, LocalLimiter, Pacer


def test_a_stalled_worker_does_not_send_its_missed_slots_back_to_back():
    rate = 100.0
    limiter = LocalLimiter(rate)
    pacer = Pacer(limiter, chunk=50)
    for _ in range(5):
        pacer.wait(100)
    time.sleep(0.25)  # a batch claimed, a slow render: about 24 of the reserved slots go by
    resumed = time.monotonic()
    sent = []
    for _ in range(30):
        pacer.wait(100)
        sent.append(time.monotonic())
    # Sending the missed slots now would put about 24 messages in the first 50 ms.
    early = sum(1 for t in sent if t < resumed + 0.05)
    allowed = (0.05 + LATE) / limiter.interval + 2
    assert early <= allowed, f"{early} messages in the 50 ms after a stall; the rate allows {allowed:.0f}"


def test_slots_missed_by_a_stall_are_not_used_and_fresh_ones_follow_the_rate():
    limiter = LocalLimiter(50.0)
    pacer = Pacer(limiter, chunk=10)
    pacer.wait(10)
    time.sleep(0.5)  # every slot of the chunk is now stale
    before = time.monotonic()
    pacer.wait(10)
    pacer.wait(10)
    # A fresh reservation: the second message waits one interval after the first.
    assert time.monotonic() - before >= limiter.interval * 0.9
    assert pacer.unused() == 8
