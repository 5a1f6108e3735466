"""Where a request came from, as services record it (consent events, submissions): no HTTP in it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    client_ip: str | None = None
    user_agent: str | None = None
