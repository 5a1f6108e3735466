"""CRM_SEND_RATE across every worker: evenly spaced send slots (GCRA), shared through Redis.

A token bucket lets a full bucket burst on top of the refill, so a one-second window could see
twice the rate. Spacing slots 1/rate apart (the generic cell rate algorithm with no burst)
keeps every one-second window at or under the rate. Workers reserve a few slots per call
(about a tenth of a second's worth) so the limiter costs one Redis round trip per handful of
messages, not one per message. Without Redis the same arithmetic runs in-process.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from crm.config import Settings

# Slots are spaced for 90% of the rate: a message reaches the relay some milliseconds after its slot
# (the envelope's round trips, the relay's own queue), and uneven delays between two messages one
# second apart must not put one window over the cap. At 95% a window had 5% of a second of delay to
# spare, less the LATE below, and a relay in a loaded process took more (26 within a second at 25/s).
PACING = 0.9
# A slot more than this far behind the clock is given up, not used: a worker that fell behind its
# slots (a batch claimed, a slow render, the machine busy) would otherwise send its stale slots back
# to back, on top of other workers' fresh ones, and a one-second window would go over the rate.
# Every send then happens within LATE of its slot, so a window holds at most (1 + LATE) * 0.9 of it.
LATE = 0.02

# KEYS[1] = the next free slot time (theoretical arrival time); ARGV = interval, count.
# Returns the delay until the first reserved slot, in seconds, as a string (Lua numbers
# would be truncated to integers on the way back).
_RESERVE = """
local interval = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local after = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 60000)
return string.format('%.6f', tat - now)
"""


class Limiter(Protocol):
    def reserve(self, n: int) -> float:
        """Reserve n consecutive slots; returns seconds until the first (the rest follow 1/rate apart)."""
        ...

    @property
    def interval(self) -> float: ...


class LocalLimiter:
    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / (rate * PACING)
        self._tat = 0.0
        self._lock = threading.Lock()

    def reserve(self, n: int) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(self._tat, now)
            self._tat = start + n * self.interval
            return start - now


class RedisLimiter:
    def __init__(self, url: str, key: str, rate: float) -> None:
        import redis

        self.interval = 1.0 / (rate * PACING)
        self.key = key
        self.client = redis.Redis.from_url(url)
        self._script: Any = self.client.register_script(_RESERVE)

    def reserve(self, n: int) -> float:
        return float(self._script(keys=[self.key], args=[repr(self.interval), n]))


_local: dict[tuple[str, float], LocalLimiter] = {}


def limiter_for(settings: Settings) -> Limiter:
    if settings.redis_url:
        return RedisLimiter(settings.redis_url, f"{settings.instance}:send-rate", settings.send_rate)
    key = (settings.instance, settings.send_rate)
    if key not in _local:
        _local[key] = LocalLimiter(settings.send_rate)
    return _local[key]


class Pacer:
    """Waits for each message's slot, reserving slots a few at a time."""

    def __init__(self, limiter: Limiter, chunk: int) -> None:
        self.limiter = limiter
        self.chunk = max(1, chunk)
        self._slots: list[float] = []

    def wait(self, remaining: int) -> None:
        stale = time.monotonic() - LATE
        while self._slots and self._slots[-1] < stale:
            self._slots.pop()
        if not self._slots:
            n = max(1, min(self.chunk, remaining))
            delay = self.limiter.reserve(n)
            start = time.monotonic() + delay
            self._slots = [start + i * self.limiter.interval for i in range(n)][::-1]
        at = self._slots.pop()
        pause = at - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def unused(self) -> int:
        """Slots reserved but not used (a batch ended early); they are simply let go."""
        left = len(self._slots)
        self._slots.clear()
        return left
