"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from sqlalchemy import text

from crm.http import db, settings_of


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct, kw_only=True):
    status: str  # ready or not ready (a 503)
    database: str  # ok, or the error's name
    broker: str


@get("/health", tags=["ops"])
async def health() -> Health:
    return Health(status="ok")


def _broker_ok(url: str) -> tuple[bool, str]:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2, transport_options={"max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return False, type(exc).__name__


@get("/ready", tags=["ops"], sync_to_thread=True)
def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    checks: dict[str, str] = {}
    try:
        with db(request) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = type(exc).__name__
    ok, checks["broker"] = _broker_ok(settings_of(request).broker_url)
    healthy = ok and checks["database"] == "ok"
    return Response(Readiness(status="ready" if healthy else "not ready", **checks),
                    status_code=200 if healthy else 503)
