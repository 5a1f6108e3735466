"""`crm ...`: run the service, manage the database and staff, and the staff chores."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from crm import logredact, queue
from crm.celery_publisher import CeleryPublisher
from crm.config import ConfigError, Settings, get_settings

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, Command] = {}


def _migrate(settings: Settings) -> None:
    from crm.migrate import upgrade

    if settings.is_sqlite:
        from crm.db import _prepare_sqlite_path

        _prepare_sqlite_path(settings.database_url)
    upgrade(settings)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    _migrate(settings)
    print("database is at the newest schema")
    return 0


def cmd_staff_create(args: argparse.Namespace, settings: Settings) -> int:
    from crm.console.invites import send_invitation
    from crm.db import session_scope
    from crm.errors import DomainError
    from crm.staff.service import create_staff

    try:
        with session_scope(settings) as session:
            staff, token = create_staff(session, args.email, args.role)
            email, role = staff.email, staff.role
            # Same transaction: the member and their invitation email exist together or not at all.
            send_invitation(session, settings, staff, invited_by="An administrator")
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"created {role} {email} and emailed them an invitation to set a console password")
    print("their API token is shown only now:")
    print(token)
    return 0


def cmd_staff_deactivate(args: argparse.Namespace, settings: Settings) -> int:
    from crm.db import session_scope
    from crm.errors import DomainError
    from crm.staff import management

    try:
        with session_scope(settings) as session:
            staff = management.find_staff(session, args.email)
            management.deactivate(session, staff)
            email = staff.email
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"deactivated {email}; their token no longer works")
    return 0


def cmd_staff_password(args: argparse.Namespace, settings: Settings) -> int:
    from crm.db import session_scope
    from crm.errors import DomainError
    from crm.staff import management, passwords

    # One line from standard input, so the password never shows in the process list or shell history.
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with session_scope(settings) as session:
            staff = management.find_staff(session, args.email)
            passwords.set_password(session, staff, password)
            email = staff.email
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"password set for {email}")
    return 0


def cmd_staff_token(args: argparse.Namespace, settings: Settings) -> int:
    from crm.db import session_scope
    from crm.errors import DomainError
    from crm.staff import management

    try:
        with session_scope(settings) as session:
            token = management.issue_token(session, management.find_staff(session, args.email))
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"a new token for {args.email}; the previous one stopped working. Shown only now:")
    print(token)
    return 0


def _celery(*argv: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", *argv]


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    os.execv(sys.executable, _celery("worker", "--loglevel", args.loglevel, *concurrency))
    return 0  # pragma: no cover


def cmd_beat(args: argparse.Namespace, settings: Settings) -> int:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, _celery("beat", "--loglevel", args.loglevel,
                                     "--schedule", str(settings.var_dir / "celerybeat-schedule")))
    return 0  # pragma: no cover


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from crm.app import create_app

    create_app(settings)  # fail fast on a bad configuration before forking workers
    logredact.install()  # crm.asgi installs it again in each worker process
    uvicorn.run("crm.asgi:app", host=args.host, port=args.port, workers=args.workers, proxy_headers=True,
                log_level="info")
    return 0


def _first_admin_token(settings: Settings) -> str | None:
    from crm.db import session_scope
    from crm.staff.service import any_admin, create_staff

    with session_scope(settings) as session:
        if any_admin(session):
            return None
        _, token = create_staff(session, "admin@localhost.localdomain", "admin")
        return token


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The embedded default: API, a worker with its scheduler, one Ctrl-C stops all."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    settings.resolved_secret("secret_key")
    settings.resolved_secret("webhook_secret")
    token = _first_admin_token(settings)
    base = f"http://{args.host}:{args.port}"
    print(f"CRM is starting on {base}")
    print(f"  API docs:   {base}/schema")
    print(f"  health:     {base}/health")
    print(f"  database:   {settings.database_url}")
    print(f"  broker:     {settings.broker_url}")
    print(f"  mail:       {settings.mail_backend}" + (f" -> {settings.outbox_dir}" if settings.mail_backend == "file" else ""))
    if token:
        print("First start: an admin staff token was created (shown only once):")
        print(f"  {token}")
    sys.stdout.flush()
    procs = [
        subprocess.Popen(_celery("worker", "--beat", "--loglevel", "warning", "--concurrency", "2",
                                 "--schedule", str(settings.var_dir / "celerybeat-schedule"))),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "crm.asgi:app", "--host", args.host,
                          "--port", str(args.port), "--log-level", "warning"]),
    ]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            for p in procs:
                if p.poll() is not None:
                    time.sleep(0.2)  # Ctrl-C reaches the children too: a child gone first is no failure
                    if stopping:
                        break
                    print(f"a process exited with {p.returncode}; stopping", file=sys.stderr)
                    code = p.returncode or 1
                    stopping = True
            time.sleep(0.3)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
        print("stopped")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="Charity email engagement and volunteer CRM")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="embedded default: migrate, then API + worker + scheduler")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.set_defaults(func=cmd_run)

    api = sub.add_parser("api", help="the API process (production)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="a Celery worker (production)")
    worker.add_argument("--concurrency", type=int, default=0)
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="the Celery beat scheduler (production: exactly one)")
    beat.add_argument("--loglevel", default="info")
    beat.set_defaults(func=cmd_beat)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="Alembic migrations to head").set_defaults(func=cmd_db_upgrade)

    staff = sub.add_parser("staff", help="staff users").add_subparsers(dest="staff_command", required=True)
    create = staff.add_parser("create", help="create a staff member and print its token")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=["admin", "editor", "viewer"])
    create.set_defaults(func=cmd_staff_create)
    deactivate = staff.add_parser("deactivate", help="turn a staff member off; their token stops at once")
    deactivate.add_argument("--email", required=True)
    deactivate.set_defaults(func=cmd_staff_deactivate)
    token = staff.add_parser("token", help="issue a new token for a staff member (the old one stops)")
    token.add_argument("--email", required=True)
    token.set_defaults(func=cmd_staff_token)
    password = staff.add_parser("password", help="set a staff member's console password (one line on stdin)")
    password.add_argument("--email", required=True)
    password.set_defaults(func=cmd_staff_password)

    for register in _extensions():
        register(sub)
    return parser


# Other domains' subcommands (import, demo, digest), listed here rather than appended by imports.
def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    from crm import contacts_cli
    from crm.campaigns import digest_cli
    from crm.deliverability import cli as deliverability_cli

    return [digest_cli.register, contacts_cli.register, deliverability_cli.register]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"crm: {exc}", file=sys.stderr)
        return 2
    # Commands that commit work (digests, imports) wake the workers through the broker.
    queue.install(CeleryPublisher(settings))
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
