"""The console's contact pages over N contacts on PostgreSQL: server-side page time vs the same queries.

    python bench/console.py [--contacts 1000000] [--url postgresql://postgres@127.0.0.1:5432/postgres]
                            [--repeat 7] [--keep]

Builds (or with --keep reuses, migrating it to the code's head first) a dedicated database
`crm_bench_console`, migrated with the real Alembic migrations and filled by bench/segments.py's
generator (the same INSERT ... SELECT generate_series statements, so both benches describe the same
population), then VACUUM ANALYZE.

Each page is requested through the real app (Litestar TestClient on create_app: routing, the
session-cookie guard, the handler, its audit row, Jinja2 rendering), signed in through the real
login form, and timed server side: from the app's ASGI entry to its last byte (ServerClock), so
the TestClient's own request building and parsing are not counted. "Queries" is every statement
the page runs, called directly without HTTP: the session lookup its guard makes, then for the
search page crm.contacts.search.search + contacts_public + the interest list; for a profile
crm.console.profile.load + the audit insert. Best of --repeat warm runs after one warm-up.
Goal (issue 12): every page < 300 ms warm and within 1.5x of its queries.

The segment builder's live count: GET /staff/segments/count?rules=<JSON>&list=newsletter for three
rule trees of SPEC section 6 (one interest; two interests + role + not a tag; any of a postal-code
prefix or signed up within 365 days). "Queries" is what that handler runs, called directly: the
fragment's interest choices and crm.segments.service.preview with mailable_on the list (the raw and
the gated count -- one statement unless indexes answer both --, the 5-row sample with its
interests/tags/lists, the audit insert).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm import queue  # noqa: E402
from crm.config import load_settings  # noqa: E402
from crm.console import profile, segments_view  # noqa: E402
from crm.contacts.schemas import contacts_public  # noqa: E402
from crm.contacts.search import ContactFilters, search  # noqa: E402
from crm.db import engine_for, session_scope  # noqa: E402
from crm.migrate import upgrade  # noqa: E402
from crm.segments import service as segments  # noqa: E402
from crm.staff import passwords, sessions  # noqa: E402
from crm.staff.service import audit, create_staff  # noqa: E402

DB_NAME = "crm_bench_console"
PASSWORD = "bench console password"
PAGE = 50
GOAL_MS, GOAL_RATIO = 300.0, 1.5


def _segments_bench() -> Any:
    """bench/segments.py as a module: one population and one kept-database rule for both benches."""
    spec = importlib.util.spec_from_file_location("bench_segments", ROOT / "bench" / "segments.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (name, query string of /staff/contacts, the ContactFilters the page builds from it)
SEARCHES: list[tuple[str, dict[str, str], ContactFilters]] = [
    ("newest contacts, no filter", {}, ContactFilters()),
    ("one whole address", {"q": "p424242@example.org"}, ContactFilters(q="p424242@example.org")),
    ("rare substring (last99999)", {"q": "last99999"}, ContactFilters(q="last99999")),
    ("text everyone has (example.org)", {"q": "example.org"}, ContactFilters(q="example.org")),
    ("substring spread over all (777)", {"q": "777"}, ContactFilters(q="777")),
    # Worst case, and an artefact of generated data: 11 % match, all among the oldest contacts, and
    # three of its four trigrams ("fir", "irs", "rst") are in every row, so the index narrows nothing.
    ("worst: old-only, trigrams everywhere (first1)", {"q": "first1"}, ContactFilters(q="first1")),
    ("substring + tag (first1, board-member)", {"q": "first1", "tag": "board-member"},
     ContactFilters(q="first1", tag="board-member")),
    ("interest + role + list", {"interest": "tobacco-cessation", "role": "caregiver", "list": "newsletter"},
     ContactFilters(interest="tobacco-cessation", role="caregiver", on_list="newsletter")),
    ("rare tag (board-member)", {"tag": "board-member"}, ContactFilters(tag="board-member")),
    ("status bounced", {"status": "bounced"}, ContactFilters(status="bounced")),
]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best of `repeat` runs after a warm-up: the seconds `fn` returns (a page's server time), else wall time."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        measured = fn()
        times.append(measured if isinstance(measured, float) else time.perf_counter() - start)
    return min(times)


class ServerClock:
    """Wraps the app's ASGI handler: how long the last request spent inside the server, from the
    ASGI call to its last byte sent, leaving out the TestClient's own request building and parsing."""

    def __init__(self, app: Any) -> None:
        self.handler = app.asgi_handler
        self.last = 0.0
        app.asgi_handler = self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        try:
            await self.handler(scope, receive, send)
        finally:
            self.last = time.perf_counter() - start


def _page(client: Any, clock: ServerClock, path: str, params: dict[str, str] | None = None) -> Callable[[], float]:
    def run() -> float:
        client.get(path, params=params).raise_for_status()
        return clock.last
    return run


def _session_lookup(settings: Any, token: str) -> None:
    """The statement every console page runs first (its guard): the session and its member."""
    with session_scope(settings) as s:
        assert sessions.DatabaseSessions().resume(s, token, settings.staff_session_hours) is not None


def _prepare(url: str, server: Any, n: int, keep: bool) -> None:
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    engine = engine_for(url)
    if keep:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DB_NAME}).first()
        if exists:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM contact")).scalar() == n:
                    admin.dispose()
                    _segments_bench().migrate_kept(url, engine)
                    return
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        upgrade(load_settings(database_url=url, var_dir=Path(tmp), secret_key="bench", webhook_secret="bench"))
    start = time.perf_counter()
    _segments_bench().generate(engine, n)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"generated {n:,} contacts in {time.perf_counter() - start:.1f} s (bench/segments.py's generator), "
          "then VACUUM ANALYZE")


def _signed_in_client(settings: Any) -> tuple[Any, ServerClock, str]:
    from litestar.testing import TestClient

    from crm.app import create_app

    with session_scope(settings) as s:
        if s.execute(text("SELECT 1 FROM staff WHERE email = 'bench@staff.example.org'")).first() is None:
            staff, _ = create_staff(s, "bench@staff.example.org", "viewer")
            passwords.set_password(s, staff, PASSWORD)
        s.execute(text("DELETE FROM staff_login_failure"))
    app = create_app(settings, publisher=queue.MemoryPublisher())
    clock = ServerClock(app)
    client = TestClient(app=app, base_url="http://bench.local")
    client.__enter__()
    form = client.get("/staff/login").text
    token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    done = client.post("/staff/login", data={"email": "bench@staff.example.org", "password": PASSWORD,
                                             "csrf_token": token, "next": "/staff/"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client, clock, client.cookies["crm_staff_session"]


def _direct_search(settings: Any, token: str, filters: ContactFilters) -> Callable[[], Any]:
    def run() -> Any:
        _session_lookup(settings, token)
        with session_scope(settings) as s:
            profile.interest_choices(s)
            rows, _ = search(s, filters, None, PAGE)
            return contacts_public(s, rows)
    return run


def _direct_profile(settings: Any, token: str, contact_id: int) -> Callable[[], Any]:
    def run() -> Any:
        _session_lookup(settings, token)
        with session_scope(settings) as s:
            found = profile.load(s, contact_id)
            audit(s, "bench@staff.example.org", "contact.view", f"contact:{contact_id}", rows=1)
            return found
    return run


def _segment_trees() -> list[tuple[str, dict[str, Any]]]:
    """Three rule trees of SPEC section 6, each valid for crm/segments/compiler.py."""
    year_ago = (dt.date.today() - dt.timedelta(days=365)).isoformat()  # signed_up takes dates, not a day count
    return [
        ("one interest (caregiving)", {"all": [{"interest": {"any": ["caregiving"]}}]}),
        ("2 interests + role + not tag", {"all": [
            {"interest": {"any": ["caregiving", "clinical-trials"]}},
            {"role": {"in": ["patient", "caregiver"]}},
            {"not": {"tag": {"any": ["do-not-call"]}}},
        ]}),
        ("any: postal prefix 303 or signed up < 365 d", {"any": [
            {"postal_code": {"prefix": "303"}},
            {"signed_up": {"after": year_ago}},
        ]}),
    ]


SEGMENT_LIST = "newsletter"
SEGMENT_COUNTS: list[str] = []  # what each tree matched, printed under the table


def _direct_segment_count(settings: Any, token: str, rules: dict[str, Any]) -> Callable[[], Any]:
    """What GET /staff/segments/count runs without HTTP: the fragment's interest choices, then
    segments_view.count_panel's work -- segments.service.preview with the list's mailable count (the
    two counts, the 5-row sample with its interests/tags/lists, the audit row)."""
    def run() -> Any:
        _session_lookup(settings, token)
        with session_scope(settings) as s:
            segments_view.interest_choices(s)
            found = segments.preview(s, rules, None, staff_email="bench@staff.example.org",
                                     target="segment:unsaved", sample_size=segments_view.SAMPLE,
                                     mailable_on=SEGMENT_LIST)
            return found["count"], found["mailable"]
    return run


def segment_live_count_figures(client: Any, clock: ServerClock, token: str, settings: Any,
                               repeat: int) -> list[tuple[str, float, float]]:
    """The segment builder's live count for three rule trees: (name, page seconds, direct seconds).

    The page is GET /staff/segments/count?rules=<JSON>&list=newsletter through the signed-in `client`
    (the session guard, the handler, count + sample + mailable count, the audit row, the fragment's
    rendering); the direct side is _direct_segment_count. Each tree is checked first: a 200 fragment
    whose two counts are the ones the service gives.
    """
    out = []
    for name, rules in _segment_trees():
        params = {"rules": json.dumps(rules), "list": SEGMENT_LIST}
        first = client.get("/staff/segments/count", params=params)
        assert first.status_code == 200, first.text
        count, mailable = _direct_segment_count(settings, token, rules)()
        for n in (count, mailable):
            assert f'<strong class="big">{n:,}</strong>' in first.text, (name, n, first.text[:2000])
        SEGMENT_COUNTS.append(f"{name}: {count:,} match, {mailable:,} mailable on {SEGMENT_LIST}")
        page_s = best_of(_page(client, clock, "/staff/segments/count", params), repeat)
        direct_s = best_of(_direct_segment_count(settings, token, rules), repeat)
        out.append((name, page_s, direct_s))
    return out


def _row(name: str, page_s: float, direct_s: float) -> bool:
    ratio = page_s / direct_s if direct_s else float("inf")
    ok = page_s * 1000 < GOAL_MS and ratio <= GOAL_RATIO
    print(f"{name:<58} {page_s * 1000:>8.1f}ms {direct_s * 1000:>8.1f}ms {ratio:>5.2f}x{'' if ok else '  <- over goal'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=int(os.environ.get("CRM_BENCH_CONTACTS", 1_000_000)))
    parser.add_argument("--url", default=os.environ.get("CRM_BENCH_DATABASE_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="reuse the generated database if it has the size asked")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the TestClient logs every request otherwise

    server = make_url(args.url).set(drivername="postgresql+psycopg")
    url = server.set(database=DB_NAME).render_as_string(hide_password=False)
    _prepare(url, server, args.contacts, args.keep)
    tmp = tempfile.mkdtemp()
    settings = load_settings(database_url=url, var_dir=Path(tmp), secret_key="bench", webhook_secret="bench",
                             broker_url="memory://", mail_backend="memory", public_base_url="http://bench.local")
    with session_scope(settings) as s:
        version = s.execute(text("SHOW server_version")).scalar()
        rows = s.execute(text("SELECT count(*) FROM contact")).scalar()
        # A profile with something in every part: a volunteer who was sent campaigns.
        contact_id = s.execute(text("SELECT v.contact_id FROM volunteer v JOIN delivery d ON d.contact_id = v.contact_id "
                                    "ORDER BY v.contact_id DESC LIMIT 1")).scalar()
    print(f"setup: PostgreSQL {version}, database {DB_NAME}, {rows:,} contacts; the app in-process (TestClient, "
          f"one thread), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {args.repeat} warm runs")
    print("page: server side, from the app's ASGI entry to its last byte (routing, the session guard, the handler,\n"
          "      its audit row, rendering); baseline: the same statements called directly -- the session\n"
          "      lookup, then the page's service calls -- without HTTP or rendering\n")
    client, clock, token = _signed_in_client(settings)
    failures, checked = 0, 0
    print(f"{'page':<58} {'page':>10} {'queries':>10} {'ratio':>6}")
    for name, params, filters in SEARCHES:
        page_s = best_of(_page(client, clock, "/staff/contacts", params), args.repeat)
        direct_s = best_of(_direct_search(settings, token, filters), args.repeat)
        failures += not _row(f"contacts search: {name}", page_s, direct_s)
        checked += 1
    page_s = best_of(_page(client, clock, f"/staff/contacts/{contact_id}"), args.repeat)
    direct_s = best_of(_direct_profile(settings, token, contact_id), args.repeat)
    failures += not _row(f"profile of contact {contact_id}", page_s, direct_s)
    checked += 1
    for name, live_s, count_s in segment_live_count_figures(client, clock, token, settings, args.repeat):
        failures += not _row(f"segment live count: {name}", live_s, count_s)
        checked += 1
    client.__exit__(None, None, None)
    for line in SEGMENT_COUNTS:
        print(f"  segment {line}")
    print(f"\n{checked - failures}/{checked} pages meet the goal (< {GOAL_MS:.0f} ms warm and <= {GOAL_RATIO}x "
          "their queries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
