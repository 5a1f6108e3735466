"""Opportunity matching over N volunteers on PostgreSQL: the matches query vs hand-written SQL, same run.

    python bench/volunteer_matching.py [--volunteers 200000] [--url postgresql://postgres@127.0.0.1:5432/postgres]
                                       [--repeat 5] [--keep]

Builds a dedicated fresh database (crm_bench_volunteers), migrates it with the real Alembic
migrations, bulk-generates contacts and volunteers with INSERT ... SELECT generate_series (no
Python loops), VACUUM ANALYZEs, then times, for three opportunities, the staff page of matches
(`crm.volunteers.opportunities.matches`, first 50) and a count of every match through the same
condition, against hand-written SQL answering the same question. Best of --repeat after one
warm-up. The figure is the ratio (goal <= 1.5x, every page < 0.1 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from crm.config import load_settings  # noqa: E402
from crm.db import engine_for  # noqa: E402
from crm.migrate import upgrade  # noqa: E402
from crm.volunteers import opportunities as opps  # noqa: E402
from crm.volunteers.models import Opportunity  # noqa: E402

DB_NAME = "crm_bench_volunteers"

GENERATE = [
    """
    CREATE FUNCTION pg_temp.rnd(salt text, id bigint) RETURNS double precision IMMUTABLE LANGUAGE sql
    AS $$ SELECT (hashtext(salt || ':' || id)::bigint + 2147483648) / 4294967296.0 $$
    """,
    # A third of the volunteers live in three metro areas; the rest spread over a thousand prefixes.
    """
    INSERT INTO contact (email, email_key, email_hash, first_name, last_name, phone, postal_code, language, role,
                         status, bereaved, soft_bounces, created_at, updated_at)
    SELECT 'v' || g || '@example.org', 'v' || g || '@example.org', md5(g::text), 'First' || g, 'Last' || g, '',
           CASE WHEN pg_temp.rnd('pc', g) < 0.15 THEN '303' WHEN pg_temp.rnd('pc', g) < 0.25 THEN '606'
                WHEN pg_temp.rnd('pc', g) < 0.33 THEN '100' ELSE lpad((g * 7919 % 1000)::text, 3, '0') END
             || lpad((g * 31 % 100)::text, 2, '0'),
           CASE WHEN pg_temp.rnd('lang', g) < 0.2 THEN 'es' ELSE 'en' END, NULL,
           CASE WHEN pg_temp.rnd('st', g) < 0.97 THEN 'active' ELSE 'unsubscribed' END, false, 0, now(), now()
    FROM generate_series(1, :n) g
    """,
    """
    INSERT INTO volunteer (contact_id, status, skills, languages, message, postal_code, paused_until,
                           created_at, updated_at)
    SELECT c.id, (ARRAY['interested','contacted','onboarding','active','active','active','paused','inactive'])
                 [1 + (c.id % 8)], '', '[]', '', c.postal_code,
           CASE WHEN pg_temp.rnd('pause', c.id) < 0.05 THEN current_date + 30 END, now(), now()
    FROM contact c
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
]

# (title, area, postal code, availability or None)
OPPORTUNITIES = [
    ("Weekend drivers, Atlanta", "transport-to-treatment", "30309", "weekends"),
    ("Lodge hosts, Chicago", "lodging-support", "60614", None),
    ("Gala helpers, New York", "events", "10001", "weekday-evenings"),
]


def handwritten(opp: Opportunity, prefix_len: int, *, count: bool) -> str:
    """What a person would write by hand for the same question."""
    prefix = opp.postal_code.replace(" ", "").upper()[:prefix_len]
    slot = (f"AND EXISTS (SELECT 1 FROM volunteer_availability s WHERE s.volunteer_id = v.id "
            f"AND s.slot = '{opp.availability}')" if opp.availability else "")
    head = "SELECT count(*)" if count else "SELECT v.*, c.*"
    tail = "" if count else "ORDER BY v.id DESC LIMIT 51"
    return f"""{head} FROM volunteer v JOIN contact c ON c.id = v.contact_id
        WHERE v.status = 'active' AND (v.paused_until IS NULL OR v.paused_until < current_date)
          AND c.status <> 'erased' AND upper(replace(v.postal_code, ' ', '')) LIKE '{prefix}%'
          AND EXISTS (SELECT 1 FROM volunteer_area a WHERE a.volunteer_id = v.id AND a.area = '{opp.area}')
          {slot} {tail}"""


def best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    fn()
    times, result = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volunteers", type=int, default=200_000)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = ap.parse_args()

    server = make_url(args.url).set(drivername="postgresql+psycopg")
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    url = server.set(database=DB_NAME).render_as_string(hide_password=False)
    try:
        settings = load_settings(database_url=url, secret_key="bench", webhook_secret="bench",
                                 var_dir=Path(tempfile.mkdtemp()) / "var")
        upgrade(settings)
        engine = engine_for(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            for sql in GENERATE:
                conn.execute(text(sql), {"n": args.volunteers})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"setup: {args.volunteers} volunteers (3/8 active, 5% self-paused) generated in "
              f"{time.perf_counter() - started:.1f} s; PostgreSQL; prefix {settings.match_postal_prefix}; "
              f"best of {args.repeat}")

        worst = 0.0
        with Session(engine) as session:
            for title, area, postal_code, slot in OPPORTUNITIES:
                opp = opps.create(session, {"title": title, "area": area, "postal_code": postal_code,
                                            "availability": slot}, "bench")
                session.commit()

                def page(opp: Opportunity = opp) -> int:
                    return len(opps.matches(session, settings, opp.id or 0, None, 50)[0])

                def count(opp: Opportunity = opp) -> int:
                    q = select(func.count()).select_from(opps.matches_query(settings, opp).subquery())
                    return int(session.scalar(q) or 0)

                def hand_page(opp: Opportunity = opp) -> int:
                    return len(session.execute(text(handwritten(opp, settings.match_postal_prefix, count=False)))
                               .all()[:50])

                def hand_count(opp: Opportunity = opp) -> int:
                    return int(session.scalar(text(handwritten(opp, settings.match_postal_prefix, count=True))) or 0)

                t_page, n_page = best_of(page, args.repeat)
                t_hpage, n_hpage = best_of(hand_page, args.repeat)
                t_count, n = best_of(count, args.repeat)
                t_hcount, n_hand = best_of(hand_count, args.repeat)
                assert (n, n_page) == (n_hand, n_hpage), (title, n, n_hand, n_page, n_hpage)
                worst = max(worst, t_page / t_hpage, t_count / t_hcount)
                print(f"{title:28} {n:6} matches | page of 50: {t_page * 1000:7.2f} ms vs hand {t_hpage * 1000:7.2f} ms "
                      f"({t_page / t_hpage:4.2f}x) | count: {t_count * 1000:7.2f} ms vs hand "
                      f"{t_hcount * 1000:7.2f} ms ({t_count / t_hcount:4.2f}x)")
                session.rollback()
        print(f"figure: matching costs {worst:.2f}x hand-written SQL at worst (goal <= 1.5x)")
    finally:
        engine_for.cache_clear()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
