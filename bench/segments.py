"""Segment counts over N contacts on PostgreSQL: compiled rule trees vs hand-written SQL, same run.

    python bench/segments.py [--contacts 1000000] [--url postgresql://postgres@127.0.0.1:5432/postgres]
                             [--repeat 5] [--keep]

Builds a dedicated fresh database (crm_bench_segments), migrates it with the real Alembic
migrations, bulk-generates contacts with INSERT ... SELECT generate_series (no Python loops),
VACUUM ANALYZEs, then times `crm.segments.service.count` (validation, compilation and the one
query) for five representative rule trees against a hand-written query answering the same
question. Best of --repeat runs after one warm-up. Goal: every count < 0.1 s and <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from crm.config import load_settings  # noqa: E402
from crm.db import engine_for  # noqa: E402
from crm.migrate import upgrade  # noqa: E402
from crm.segments import service  # noqa: E402

DB_NAME = "crm_bench_segments"

# Realistic shape: most people are English speakers, a fifth Spanish; a few metro areas hold a
# third of the list (the charity's home regions); interests have very different popularity.
GENERATE = [
    # A deterministic per-(salt, id) uniform number in [0, 1): volatile random() in a cross join's WHERE
    # may be evaluated once per join rather than once per row.
    """
    CREATE FUNCTION pg_temp.rnd(salt text, id bigint) RETURNS double precision IMMUTABLE LANGUAGE sql
    AS $$ SELECT (hashtext(salt || ':' || id)::bigint + 2147483648) / 4294967296.0 $$
    """,
    """
    INSERT INTO contact (email, email_key, email_hash, first_name, last_name, phone, postal_code, language, role,
                         status, bereaved, soft_bounces, last_engaged_at, created_at, updated_at)
    SELECT 'p' || g || '@example.org', 'p' || g || '@example.org', md5(g::text) || md5('s' || g::text),
           'First' || g, 'Last' || g, '',
           CASE WHEN r1 < 0.12 THEN '303' WHEN r1 < 0.18 THEN '300' WHEN r1 < 0.24 THEN '770'
                WHEN r1 < 0.30 THEN '606' WHEN r1 < 0.35 THEN '100' ELSE lpad((g::bigint * 7919 % 1000)::text, 3, '0') END
             || lpad((g * 31 % 100)::text, 2, '0'),
           CASE WHEN r2 < 0.2 THEN 'es' ELSE 'en' END,
           CASE WHEN r3 < 0.20 THEN NULL WHEN r3 < 0.35 THEN 'patient' WHEN r3 < 0.52 THEN 'caregiver'
                WHEN r3 < 0.62 THEN 'family' WHEN r3 < 0.72 THEN 'survivor' WHEN r3 < 0.77 THEN 'professional'
                WHEN r3 < 0.95 THEN 'supporter' ELSE 'other' END,
           CASE WHEN r4 < 0.88 THEN 'active' WHEN r4 < 0.95 THEN 'unsubscribed' WHEN r4 < 0.97 THEN 'bounced'
                WHEN r4 < 0.975 THEN 'complained' ELSE 'erased' END,
           r5 < 0.02, 0,
           CASE WHEN r5 < 0.4 THEN now() - (r6 * 365) * interval '1 day' END,
           now() - (r6 * 5 * 365) * interval '1 day', now()
    FROM (SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5, random() r6
          FROM generate_series(1, :n) g) s
    """,
    # Interests: each key with its own popularity, about two per person.
    """
    INSERT INTO contact_interest (interest_key, contact_id)
    SELECT i.key, c.id FROM contact c CROSS JOIN (VALUES
        ('cancer-information', 0.35), ('treatment-and-side-effects', 0.30), ('clinical-trials', 0.15),
        ('caregiving', 0.22), ('tobacco-cessation', 0.08), ('patient-programs', 0.12), ('volunteering', 0.10),
        ('fundraising-events', 0.14), ('donations', 0.10), ('research-news', 0.18), ('advocacy', 0.06)) i(key, p)
    WHERE c.status <> 'erased' AND pg_temp.rnd(i.key, c.id) < i.p
    """,
    """
    INSERT INTO contact_tag (tag, contact_id)
    SELECT t.tag, c.id FROM contact c CROSS JOIN (VALUES
        ('gala-2026', 0.03), ('walk-2025', 0.05), ('board-member', 0.0005), ('major-donor', 0.01),
        ('press', 0.002), ('helpline-caller', 0.08)) t(tag, p)
    WHERE c.status <> 'erased' AND pg_temp.rnd(t.tag, c.id) < t.p
    """,
    """
    INSERT INTO subscription (contact_id, list, state, frequency, created_at, confirmed_at)
    SELECT c.id, l.list,
           CASE WHEN pg_temp.rnd('state' || l.list, c.id) < 0.85 THEN 'confirmed'
                WHEN pg_temp.rnd('state' || l.list, c.id) < 0.95 THEN 'pending' ELSE 'unsubscribed' END,
           CASE WHEN l.list = 'newsletter' THEN (CASE WHEN pg_temp.rnd('f', c.id) < 0.7 THEN 'weekly' ELSE 'monthly' END) END,
           c.created_at, c.created_at
    FROM contact c CROSS JOIN (VALUES ('newsletter', 0.7), ('volunteer-updates', 0.05), ('donor-updates', 0.08))
         l(list, p)
    WHERE c.status <> 'erased' AND pg_temp.rnd(l.list, c.id) < l.p
    """,
    """
    INSERT INTO suppression (email_hash, reason, created_at)
    SELECT email_hash, CASE status WHEN 'unsubscribed' THEN 'unsubscribed' WHEN 'bounced' THEN 'bounced'
                                   WHEN 'complained' THEN 'complained' ELSE 'erased' END, now()
    FROM contact WHERE status <> 'active'
    """,
    """
    INSERT INTO volunteer (contact_id, status, skills, languages, message, postal_code, created_at, updated_at)
    SELECT c.id, (ARRAY['interested','contacted','onboarding','active','active','active','paused','inactive'])
                 [1 + (c.id % 8)], '', '[]', '', c.postal_code, c.created_at, now()
    FROM contact c WHERE c.status <> 'erased' AND pg_temp.rnd('volunteer', c.id) < 0.05
    """,
    """
    INSERT INTO volunteer_area (area, volunteer_id)
    SELECT a.area, v.id FROM volunteer v CROSS JOIN (VALUES ('transport-to-treatment', 0.3), ('lodging-support', 0.1),
        ('events', 0.4), ('peer-support', 0.2), ('office', 0.1), ('advocacy', 0.1), ('fundraising', 0.2)) a(area, p)
    WHERE pg_temp.rnd(a.area, v.id) < a.p
    """,
    """
    INSERT INTO volunteer_availability (slot, volunteer_id)
    SELECT a.slot, v.id FROM volunteer v CROSS JOIN (VALUES ('weekday-daytime', 0.4), ('weekday-evenings', 0.4),
        ('weekends', 0.5)) a(slot, p)
    WHERE pg_temp.rnd(a.slot, v.id) < a.p
    """,
    # A year of campaigns' engagement: deliveries to 30% of people, a fifth of them opened, some clicked.
    """
    INSERT INTO campaign (kind, name, subject, list, template, content_ids, translations, state, track_opens,
                          track_clicks, created_at, updated_at)
    SELECT 'campaign', 'Bench ' || g, 'News', 'newsletter', 'campaign', '[]', '{}', 'sent', true, true, now(), now()
    FROM generate_series(1, 4) g
    """,
    """
    INSERT INTO delivery (campaign_id, contact_id, status, attempts, sent_at, opened_at, clicked_at)
    SELECT 1 + (c.id % 4), c.id, 'sent', 1, now() - pg_temp.rnd('sent', c.id) * interval '200 days',
           CASE WHEN pg_temp.rnd('open', c.id) < 0.2 THEN now() - pg_temp.rnd('sent', c.id) * interval '200 days' END,
           CASE WHEN pg_temp.rnd('click', c.id) < 0.05 THEN now() - pg_temp.rnd('sent', c.id) * interval '200 days' END
    FROM contact c
    WHERE c.status <> 'erased' AND pg_temp.rnd('delivery', c.id) < 0.3
    """,
    # Tracking stamps last_engaged_at with every open or click; keep the generated data true to that.
    """
    UPDATE contact c SET last_engaged_at = d.latest
    FROM (SELECT contact_id, max(greatest(opened_at, clicked_at)) latest FROM delivery
          WHERE opened_at IS NOT NULL OR clicked_at IS NOT NULL GROUP BY contact_id) d
    WHERE d.contact_id = c.id AND (c.last_engaged_at IS NULL OR c.last_engaged_at < d.latest)
    """,
]

# (name, rule tree, list gate or None, hand-written SQL answering the same question)
CASES: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "one interest",
        {"interest": {"any": ["clinical-trials"]}},
        None,
        """SELECT count(*) FROM contact_interest ci JOIN contact c ON c.id = ci.contact_id
           WHERE ci.interest_key = 'clinical-trials' AND c.status <> 'erased'""",
    ),
    (
        "Spanish caregivers, clinical trials, Atlanta",
        {"all": [{"language": "es"}, {"role": {"in": ["caregiver", "family"]}},
                 {"interest": {"any": ["clinical-trials"]}}, {"postal_code": {"prefix": "303"}}]},
        None,
        """SELECT count(*) FROM contact c JOIN contact_interest ci ON ci.contact_id = c.id
           WHERE ci.interest_key = 'clinical-trials' AND c.language = 'es' AND c.role IN ('caregiver', 'family')
             AND c.postal_code LIKE '303%' AND c.status <> 'erased'""",
    ),
    (
        "newsletter audience: two interests, not board (mailing gate)",
        {"all": [{"interest": {"all": ["treatment-and-side-effects", "caregiving"]}},
                 {"not": {"tag": "board-member"}}]},
        "newsletter",
        """SELECT count(*) FROM contact c
           JOIN contact_interest a ON a.contact_id = c.id AND a.interest_key = 'treatment-and-side-effects'
           JOIN contact_interest b ON b.contact_id = c.id AND b.interest_key = 'caregiving'
           JOIN subscription s ON s.contact_id = c.id AND s.list = 'newsletter' AND s.state = 'confirmed'
           LEFT JOIN contact_tag t ON t.contact_id = c.id AND t.tag = 'board-member'
           LEFT JOIN suppression x ON x.email_hash = c.email_hash
           WHERE c.status = 'active' AND t.contact_id IS NULL AND x.email_hash IS NULL""",
    ),
    (
        "recent signups: gala guests or engaged in 90 days",
        {"all": [{"signed_up": {"after": "2025-06-01"}},
                 {"any": [{"tag": "gala-2026"}, {"engaged": {"within_days": 90}}]}]},
        None,
        """SELECT count(*) FROM contact c
           WHERE c.created_at >= '2025-06-01' AND c.status <> 'erased'
             AND (c.id IN (SELECT contact_id FROM contact_tag WHERE tag = 'gala-2026')
                  OR c.last_engaged_at >= now() - interval '90 days')""",
    ),
    (
        "weekend drivers near Atlanta",
        {"all": [{"volunteer": {"area": "transport-to-treatment", "availability": "weekends",
                                "status": ["active", "onboarding"]}},
                 {"postal_code": {"prefix": ["303", "300"]}}]},
        None,
        """SELECT count(*) FROM volunteer v JOIN contact c ON c.id = v.contact_id
           JOIN volunteer_area a ON a.volunteer_id = v.id AND a.area = 'transport-to-treatment'
           JOIN volunteer_availability s ON s.volunteer_id = v.id AND s.slot = 'weekends'
           WHERE v.status IN ('active', 'onboarding') AND c.status <> 'erased'
             AND (c.postal_code LIKE '303%' OR c.postal_code LIKE '300%')""",
    ),
]


def generate(engine: Any, n: int) -> None:
    """The population, in one transaction.

    A bulk load, like a restore: the row triggers that keep mailable_subscription and
    mailable_interest are off while the generated rows go in, then the backfills of migrations 0015
    and 0017 fill them, one INSERT ... SELECT each. (Row by row, a million rows took over an hour.)
    """
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("SELECT setseed(0.42)"))
        for sql in GENERATE:
            conn.execute(text(sql), {"n": n})
        for backfill in _mailable_backfills():
            conn.execute(text(backfill))
        conn.execute(text("SET LOCAL session_replication_role = origin"))


def _mailable_backfills() -> list[str]:
    """The backfill statements of the migrations that created mailable_subscription and mailable_interest."""
    import importlib.util

    statements = []
    for revision in ("0015", "0017"):
        [path] = (Path(__file__).resolve().parents[1] / "migrations" / "versions").glob(f"{revision}_*.py")
        spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        statements.append(module.BACKFILL)
    return statements


def _revision(engine: Any) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate_kept(url: str, engine: Any) -> None:
    """A kept database keeps its rows but follows the code's schema: the real migrations up to head
    (a no-op when current; later migrations add columns, tables, indexes and triggers, never reseed)."""
    before = _revision(engine)
    with tempfile.TemporaryDirectory() as tmp:
        upgrade(load_settings(database_url=url, var_dir=Path(tmp), secret_key="bench", webhook_secret="bench"))
    after = _revision(engine)
    engine.dispose()
    if after != before:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"kept database migrated {before} -> {after} (the real migrations; no rows regenerated), "
              "then VACUUM ANALYZE")


def best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    fn()  # warm: caches, plan, JIT decisions
    times, result = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=int(os.environ.get("CRM_BENCH_CONTACTS", 100_000)))
    parser.add_argument("--url", default=os.environ.get("CRM_BENCH_DATABASE_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse the generated database if it has the size asked")
    args = parser.parse_args()

    server = make_url(args.url).set(drivername="postgresql+psycopg")
    url = server.set(database=DB_NAME).render_as_string(hide_password=False)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    engine = engine_for(url)
    reuse = False
    if args.keep:
        with admin.connect() as conn:
            exists_ = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DB_NAME}).first()
        if exists_:
            with engine.connect() as conn:
                reuse = conn.execute(text("SELECT count(*) FROM contact")).scalar() == args.contacts
            if reuse:
                migrate_kept(url, engine)
    if not reuse:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        with tempfile.TemporaryDirectory() as tmp:
            upgrade(load_settings(database_url=url, var_dir=Path(tmp), secret_key="bench", webhook_secret="bench"))
        start = time.perf_counter()
        generate(engine, args.contacts)
        load = time.perf_counter() - start
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"generated {args.contacts:,} contacts in {load:.1f} s, then VACUUM ANALYZE")
    with engine.connect() as conn:
        sizes = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in
                 ("contact", "contact_interest", "contact_tag", "subscription", "volunteer", "delivery")}
        version = conn.execute(text("SHOW server_version")).scalar()
    print(f"setup: PostgreSQL {version}, database {DB_NAME}, rows " + ", ".join(f"{k}={v:,}" for k, v in
                                                                                  sizes.items()))
    print(f"best of {args.repeat} warm runs; compiled = crm.segments.service.count (validate + compile + query); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")

    failures = 0
    print(f"{'rule tree':<62} {'count':>9} {'compiled':>10} {'hand SQL':>10} {'ratio':>6}")
    with Session(engine) as session:
        for name, rules, list_key, sql in CASES:
            compiled_s, n = best_of(lambda r=rules, lk=list_key: service.count(session, r, lk), args.repeat)
            hand_s, m = best_of(lambda q=sql: int(session.execute(text(q)).scalar() or 0), args.repeat)
            ratio = compiled_s / hand_s
            # "within 90 days" slides between the two timings: a contact may cross the edge meanwhile.
            same = n == m or ("engaged" in str(rules) and abs(n - m) <= max(3, m // 10_000))
            ok = same and compiled_s < 0.1 and ratio <= 1.2
            failures += not ok
            mark = "" if ok else ("  <- counts differ" if not same else "  <- over goal")
            print(f"{name:<62} {n:>9,} {compiled_s * 1000:>8.1f}ms {hand_s * 1000:>8.1f}ms {ratio:>5.2f}x{mark}")
    engine.dispose()
    admin.dispose()
    print(f"\n{len(CASES) - failures}/{len(CASES)} trees meet the goal (< 100 ms warm and <= 1.2x hand-written)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
