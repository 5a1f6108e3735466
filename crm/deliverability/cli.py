"""`crm doctor`: the deliverability checks, printed with what to publish or fix; exit 1 on a failure."""

from __future__ import annotations

import argparse

from crm.config import Settings
from crm.deliverability import service

MARK = {service.OK: "ok  ", service.WARN: "warn", service.FAIL: "FAIL"}


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    result = service.report(settings)
    print(f"crm doctor: mail from {result['domain']}")
    for check in result["checks"]:
        print(f"  [{MARK[check['status']]}] {check['name']}: {check['detail']}")
        if check["fix"]:
            print(f"         fix: {check['fix']}")
    print(f"overall: {result['status']}")
    return 1 if result["status"] == service.FAIL else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    doctor = sub.add_parser("doctor", help="check settings, database, broker, relay and the From domain's "
                                           "SPF, DKIM and DMARC records")
    doctor.set_defaults(func=cmd_doctor)
