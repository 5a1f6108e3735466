"""The deliverability report's shape (GET /api/v1/deliverability)."""

from __future__ import annotations

from typing import Any

import msgspec


class CheckPublic(msgspec.Struct, kw_only=True):
    name: str  # settings, database, broker, relay, spf, dkim, dmarc
    status: str  # ok, warn, fail
    detail: str
    fix: str | None = None  # what to publish or change


class DeliverabilityReport(msgspec.Struct, kw_only=True):
    status: str  # the worst of the checks
    domain: str  # the From domain the DNS checks are about
    checks: list[CheckPublic]


def report_public(report: dict[str, Any]) -> DeliverabilityReport:
    return DeliverabilityReport(status=report["status"], domain=report["domain"],
                                checks=[CheckPublic(**c) for c in report["checks"]])
