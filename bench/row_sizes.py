"""Bytes on disk per signup and per delivery on PostgreSQL: the figures docs/scaling.md scales up.

    python bench/row_sizes.py [--signups 20000] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Builds a fresh database (crm_bench_rows) with the real migrations, then N newsletter signups
through the real service function (`forms.submit_newsletter`: contact, interests, subscription,
consent event, form submission, events, outbox row, each as the public form writes them), a
campaign to all of them planned with the real planner, and every delivery marked sent the way
the sender marks it (status, Message-ID, sent_at). After VACUUM ANALYZE it prints each table's
heap and index bytes per signup (per delivery for `delivery`). Baseline: the same count of
one-column rows (`int`) in a plain table, so the per-row overhead of PostgreSQL itself is on the
same page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm.campaigns import planning  # noqa: E402
from crm.campaigns import service as campaigns  # noqa: E402
from crm.config import load_settings  # noqa: E402
from crm.db import engine_for, session_scope  # noqa: E402
from crm.forms import service as forms  # noqa: E402
from crm.migrate import upgrade  # noqa: E402
from crm.origin import RequestMeta  # noqa: E402

DB_NAME = "crm_bench_rows"
META = RequestMeta(client_ip="198.51.100.7", user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) bench")
INTERESTS = ["treatment-and-side-effects", "caregiving", "clinical-trials", "tobacco-cessation", "cancer-information"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signups", type=int, default=20_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    base = make_url(args.url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    url = base.set(database=DB_NAME).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=url, var_dir=Path(tmp), secret_key="bench", webhook_secret="bench")
        upgrade(settings)
        start = time.perf_counter()
        for i in range(args.signups):
            with session_scope(settings) as s:
                forms.submit_newsletter(s, settings, {
                    "email": f"reader{i}@example.org", "first_name": f"Reader{i}", "consent": True,
                    "interests": [INTERESTS[i % 5], INTERESTS[(i * 3 + 1) % 5]],
                    "source_url": "https://charity.example/newsletter"}, META)
        signup_s = time.perf_counter() - start
        engine = engine_for(url)
        with engine.begin() as conn:
            # Confirmed the way the confirmation link confirms (the state the gate reads).
            conn.execute(text("UPDATE subscription SET state = 'confirmed', confirmed_at = now()"))
        with session_scope(settings) as s:
            campaign = campaigns.create(s, settings, {"name": "Bench", "subject": "News", "list": "newsletter",
                                                      "body_html": "<p>Hello</p>", "body_text": "Hello"},
                                        "bench@example.org")
            planning.plan_deliveries(s, campaign)
        with engine.begin() as conn:
            conn.execute(text("UPDATE delivery SET status = 'sent', attempts = 1, sent_at = now(), "
                              "message_id = '<' || md5(id::text) || '.' || id || '@mail.charity.example>'"))
            conn.execute(text("CREATE TABLE baseline_int (id int)"))
            conn.execute(text("INSERT INTO baseline_int SELECT generate_series(1, :n)"), {"n": args.signups})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            tables = conn.execute(text(
                "SELECT relname, pg_relation_size(relid), pg_indexes_size(relid) FROM pg_stat_user_tables "
                "ORDER BY pg_total_relation_size(relid) DESC")).all()
            # Exact counts: the statistics' n_live_tup is an estimate.
            rows = [(name, conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar(), heap, index)
                    for name, heap, index in tables]
            rows = [r for r in rows if r[1]]
            version = conn.execute(text("SHOW server_version")).scalar()
    engine_for.cache_clear()
    engine.dispose()
    print(f"setup: PostgreSQL {version}, database {DB_NAME}; {args.signups:,} newsletter signups through "
          f"forms.submit_newsletter ({signup_s:.1f} s, one transaction each), all confirmed, one campaign "
          f"planned to them and marked sent; VACUUM ANALYZE\n")
    print(f"{'table':26}{'rows':>10}{'rows/signup':>13}{'heap B/signup':>15}{'index B/signup':>16}")
    total = 0
    for name, live, heap, index in rows:
        if name in ("interest", "alembic_version", "app_secret", "campaign"):
            continue
        label = f"{name} (baseline)" if name == "baseline_int" else name
        if name != "baseline_int":
            total += heap + index
        print(f"{label:26}{live:>10,}{live / args.signups:>13.2f}{heap / args.signups:>15.0f}"
              f"{index / args.signups:>16.0f}")
    print(f"\nall tables but the baseline: {total / args.signups:,.0f} bytes per signup (delivery included: "
          f"one campaign's row per reader)")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    main()
