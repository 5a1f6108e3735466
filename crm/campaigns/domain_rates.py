"""CRM_DOMAIN_RATES: per recipient domain send slots, and the slow-down after a deferral (SPEC 14).

The same evenly spaced slots as `ratelimit` (GCRA), one schedule per domain, shared by every
worker through Redis (in process without it). Two differences:

- A slot missed by up to one interval (the sender was busy with someone else when it came) can
  still be taken: otherwise a domain sharing the global rate with others would lose part of every
  slot and run under its cap. Any window still sees at most rate x seconds + 1 messages.
- A sender never waits in line for a domain: `try_reserve` takes a slot only if it comes within
  `horizon` seconds, and otherwise says how long until it would. The batch loop then sends
  someone else, so mail to other domains never waits behind a slow one (`crm.campaigns.send.batch`).
- A deferral (`421` or `4.7.x`) halves the domain's rate. The halving holds for HOLD seconds,
  then the rate doubles every RECOVERY seconds (continuously) until it is back at its base; a
  second deferral halves whatever the rate is at that moment and starts the hold again.
  Deferrals closer together than DEBOUNCE count once: the messages already in flight from
  several workers all hear the same "slow down".

A domain with no configured rate is capped by the global rate only, until it defers: then its
base is CRM_SEND_RATE and it is slowed like any other. The state of a slowed domain is `(factor,
since)`: factor of the base rate right after the last halving, and when that was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from crm.config import Settings

HOLD = 60.0  # seconds a halving lasts before recovery starts (SPEC 14: at least a minute)
RECOVERY = 60.0  # then the rate doubles every this many seconds until it is back to its base
DEBOUNCE = 5.0  # deferrals within this many seconds of the last halving do not halve again
FLOOR = 1 / 64  # never slower than this share of the base rate
STATE_TTL = 3600  # seconds a slowed domain's state is kept in Redis after its last change
# A domain's slots are spaced for 95% of its rate: its messages are a share of the global pace, so
# their delays spread over more time than the global limiter's (crm.campaigns.ratelimit.PACING).
PACING = 0.95


def factor_at(factor: float, since: float, now: float, hold: float = HOLD, recovery: float = RECOVERY) -> float:
    """The share of its base rate a domain may use at `now`, halved to `factor` at `since`."""
    elapsed = now - since
    if elapsed < hold:
        return factor
    return min(1.0, factor * 2 ** ((elapsed - hold) / recovery))


class DomainLimiter(Protocol):
    def try_reserve(self, domain: str, base_rate: float, horizon: float) -> tuple[bool, float]:
        """(True, delay) with a slot taken `delay` seconds from now, or (False, wait) and nothing taken."""
        ...

    def defer(self, domain: str, base_rate: float) -> float:
        """A deferral from `domain`: halve its rate; returns the rate now in force."""
        ...

    def slowed(self) -> set[str]:
        """Domains currently below their base rate (or recovering)."""
        ...

    def rate(self, domain: str, base_rate: float) -> float:
        """The rate in force now for `domain`."""
        ...


class LocalDomainLimiter:
    """One process: the same arithmetic under a lock, on the monotonic clock (or a test's)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tat: dict[str, float] = {}
        self._slow: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _factor(self, domain: str, now: float) -> float:
        state = self._slow.get(domain)
        if state is None:
            return 1.0
        factor = factor_at(state[0], state[1], now)
        if factor >= 1.0:
            del self._slow[domain]
        return factor

    def try_reserve(self, domain: str, base_rate: float, horizon: float) -> tuple[bool, float]:
        with self._lock:
            now = self.clock()
            interval = 1.0 / (base_rate * PACING * self._factor(domain, now))
            start = max(self._tat.get(domain, now), now - interval)
            if start - now > horizon:
                return False, start - now
            self._tat[domain] = start + interval
            return True, max(0.0, start - now)

    def defer(self, domain: str, base_rate: float) -> float:
        with self._lock:
            now = self.clock()
            factor = self._factor(domain, now)
            last = self._slow.get(domain)
            if last is None or now - last[1] >= DEBOUNCE:
                factor = max(FLOOR, factor / 2)
                self._slow[domain] = (factor, now)
            return base_rate * factor

    def slowed(self) -> set[str]:
        with self._lock:
            now = self.clock()
            return {d for d in list(self._slow) if self._factor(d, now) < 1.0}

    def rate(self, domain: str, base_rate: float) -> float:
        with self._lock:
            return base_rate * self._factor(domain, self.clock())


# KEYS[1] = the domain's next free slot, KEYS[2] = the hash of slowed domains (domain -> "factor since").
# ARGV = domain, base interval, horizon, hold, recovery. Returns "1 delay" or "0 wait" (strings: Lua
# numbers would come back as integers).
_FACTOR = """
local function factor_of(state, now, hold, recovery)
  if not state then return 1.0 end
  local f, since = string.match(state, '(%S+) (%S+)')
  f, since = tonumber(f), tonumber(since)
  local elapsed = now - since
  if elapsed < hold then return f end
  return math.min(1.0, f * 2 ^ ((elapsed - hold) / recovery))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
_RESERVE = _FACTOR + """
local factor = factor_of(redis.call('HGET', KEYS[2], ARGV[1]), now, tonumber(ARGV[4]), tonumber(ARGV[5]))
if factor >= 1.0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
local interval = tonumber(ARGV[2]) / factor
local tat = tonumber(redis.call('GET', KEYS[1]) or tostring(now))
if tat < now - interval then tat = now - interval end
if tat - now > tonumber(ARGV[3]) then return string.format('0 %.6f', tat - now) end
local after = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil(math.max(after - now, 0) * 1000) + 60000)
return string.format('1 %.6f', math.max(tat - now, 0))
"""
# ARGV = domain, hold, recovery, debounce, floor. Returns the factor now in force.
_DEFER = _FACTOR + """
local state = redis.call('HGET', KEYS[1], ARGV[1])
local factor = factor_of(state, now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local since = nil
if state then since = tonumber(string.match(state, '%S+ (%S+)')) end
if not since or now - since >= tonumber(ARGV[4]) then
  factor = math.max(tonumber(ARGV[5]), factor / 2)
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%.9f %.6f', factor, now))
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return string.format('%.9f', factor)
"""
_FACTOR_NOW = _FACTOR + """
return string.format('%.9f', factor_of(redis.call('HGET', KEYS[1], ARGV[1]), now, tonumber(ARGV[2]),
                                       tonumber(ARGV[3])))
"""


class RedisDomainLimiter:
    """Every worker's view of every domain, one Redis round trip per paced message."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = f"{namespace}:domain-rate:"
        self.slow_key = f"{namespace}:domain-slow"
        self._reserve: Any = self.client.register_script(_RESERVE)
        self._defer: Any = self.client.register_script(_DEFER)
        self._factor: Any = self.client.register_script(_FACTOR_NOW)
        self._slowed: tuple[float, set[str]] = (0.0, set())

    def try_reserve(self, domain: str, base_rate: float, horizon: float) -> tuple[bool, float]:
        interval = 1.0 / (base_rate * PACING)
        ok, value = self._reserve(keys=[self.prefix + domain, self.slow_key],
                                  args=[domain, repr(interval), repr(horizon), HOLD, RECOVERY]).split()
        return ok == b"1", float(value)

    def defer(self, domain: str, base_rate: float) -> float:
        factor = float(self._defer(keys=[self.slow_key], args=[domain, HOLD, RECOVERY, DEBOUNCE, FLOOR, STATE_TTL]))
        self._slowed = (0.0, set())  # look again at the next `slowed()`
        return base_rate * factor

    def slowed(self) -> set[str]:
        # Asked before every message of an unconfigured domain: kept for a second, one HKEYS a second.
        at, domains = self._slowed
        if time.monotonic() - at > 1.0:
            domains = {d.decode() for d in self.client.hkeys(self.slow_key)}
            self._slowed = (time.monotonic(), domains)
        return domains

    def rate(self, domain: str, base_rate: float) -> float:
        return base_rate * float(self._factor(keys=[self.slow_key], args=[domain, HOLD, RECOVERY]))


_local: dict[str, LocalDomainLimiter] = {}


def domain_limiter_for(settings: Settings) -> DomainLimiter:
    if settings.redis_url:
        return RedisDomainLimiter(settings.redis_url, settings.instance)
    return _local.setdefault(settings.instance, LocalDomainLimiter())


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


class DomainPacer:
    """The batch loop's view: which domains are paced, and a slot for this one if it comes soon."""

    def __init__(self, settings: Settings, limiter: DomainLimiter | None = None) -> None:
        self.rates = settings.domain_rate_map
        self.default_rate = settings.send_rate
        self.limiter = limiter or domain_limiter_for(settings)

    def base_rate(self, domain: str) -> float:
        return min(self.rates.get(domain, self.default_rate), self.default_rate)

    def paced(self, domain: str) -> bool:
        return domain in self.rates or domain in self.limiter.slowed()

    def try_reserve(self, domain: str, horizon: float) -> tuple[bool, float]:
        if not self.paced(domain):
            return True, 0.0
        return self.limiter.try_reserve(domain, self.base_rate(domain), horizon)

    def defer(self, domain: str) -> float:
        return self.limiter.defer(domain, self.base_rate(domain))

    def interval(self, domain: str) -> float:
        """Seconds between two of this domain's messages at the rate now in force."""
        return 1.0 / (self.limiter.rate(domain, self.base_rate(domain)) * PACING)
