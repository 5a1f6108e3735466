"""`crm import contacts FILE.csv` (with a progress bar) and `crm demo`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from crm.config import Settings


def cmd_import_contacts(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from crm.contacts import importer
    from crm.db import session_scope
    from crm.jobs import service as jobs
    from crm.jobs.models import Job

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    staff = args.staff or f"cli:{getpass.getuser()}"
    with session_scope(settings) as session, path.open("rb") as fh:
        job = jobs.create_job(session, importer.KIND, fh, path.name, staff)
        job_id, total = job.id, job.total
    assert job_id is not None
    columns = (TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("created {task.fields[created]} updated {task.fields[updated]} "
                          "errors {task.fields[errors]}"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar, session_scope(settings) as session:
        task = bar.add_task(path.name, total=total or None, created=0, updated=0, errors=0)

        def progress(j: Job) -> None:
            bar.update(task, completed=j.processed, total=max(j.total or 0, j.processed) or None,
                       created=j.created, updated=j.updated, errors=j.error_count)

        job = importer.run(session, job_id, progress=progress)
        summary = jobs.job_dict(job)
    for err in summary["errors"][: args.show_errors]:
        print(f"row {err['row']}: {err['field']}: {err['message']}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("id", "state", "processed", "created", "updated", "unchanged",
                                              "error_count", "message")}))
    return 0 if summary["state"] == "done" else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from crm import demo
    from crm.db import session_scope

    with session_scope(settings) as session:
        result = demo.load(session, settings=settings)
    print(json.dumps(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser("import", help="bulk imports").add_subparsers(dest="import_command", required=True)
    contacts = imp.add_parser("contacts", help="import contacts from a CSV file (with a progress bar)")
    contacts.add_argument("file")
    contacts.add_argument("--staff", help="who to record as the importer (default: cli:<user>)")
    contacts.add_argument("--show-errors", type=int, default=20, help="row errors to print (default 20)")
    contacts.set_defaults(func=cmd_import_contacts)
    demo = sub.add_parser("demo", help="load sample articles, contacts and volunteers (idempotent)")
    demo.set_defaults(func=cmd_demo)
