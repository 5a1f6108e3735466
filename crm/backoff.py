"""The one retry delay: exponential, capped, with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads retries of many rows that
failed together (a relay outage) instead of moving the whole herd by the same doubling step.
"""

from __future__ import annotations

import datetime as dt
import random


def backoff(attempts: int, *, base: float, cap: float = 3600.0) -> dt.timedelta:
    """Delay before attempt `attempts + 1`: uniform in [0, min(cap, base * 2 ** (attempts - 1))]."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=random.uniform(0, ceiling))
