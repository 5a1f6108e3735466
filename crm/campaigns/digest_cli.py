"""`crm digest run --frequency weekly`: the digests due now, as the scheduler would run them."""

from __future__ import annotations

import argparse
import json

from crm.config import Settings


def cmd_digest_run(args: argparse.Namespace, settings: Settings) -> int:
    from crm.campaigns import digests
    from crm.db import session_scope
    from crm.errors import DomainError

    try:
        with session_scope(settings) as session:
            run = digests.plan_run(session, settings, args.frequency, actor="cli")
    except DomainError as exc:
        print(f"error: {exc.message}")
        return 2
    print(json.dumps(run.as_dict()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    digest = sub.add_parser("digest", help="personal content digests").add_subparsers(
        dest="digest_command", required=True)
    run = digest.add_parser("run", help="plan and send the digests due now")
    run.add_argument("--frequency", required=True, choices=["weekly", "monthly"])
    run.set_defaults(func=cmd_digest_run)
