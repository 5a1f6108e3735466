"""Personal digests vs a broadcast to the same people, on PostgreSQL, in the same run.

    python bench/digest.py [--contacts 100000] [--items 200] [--url postgresql://postgres@127.0.0.1:5432/postgres]
                           [--keep]

Builds a fresh database (crm_bench_digest) with the real migrations, generates N confirmed
weekly newsletter readers (a fifth Spanish, about two interests each) and --items content items
spread over the last 31 days (a fifth Spanish, one or two topics each) with INSERT ... SELECT
generate_series. Then, in one process, through the real pipeline with a sender that discards the
bytes (the figure is our work, not an SMTP server's):

  baseline  a broadcast campaign to the newsletter list: create + launch + plan, then send_some
            until nothing is left;
  digest    `digests.plan_run(weekly)`, then send_some until nothing is left.

Prints each phase's seconds, messages and messages/s, and the ratio digest / broadcast (goal <= 1.5x).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm.campaigns import digests, pipeline, planning  # noqa: E402
from crm.campaigns import service as campaigns  # noqa: E402
from crm.campaigns.models import Delivery  # noqa: E402
from crm.config import Settings, load_settings  # noqa: E402
from crm.db import engine_for, session_scope  # noqa: E402
from crm.migrate import upgrade  # noqa: E402

DB_NAME = "crm_bench_digest"
KEYS = ["cancer-information", "treatment-and-side-effects", "clinical-trials", "caregiving", "tobacco-cessation",
        "patient-programs", "volunteering", "fundraising-events", "donations", "research-news", "advocacy"]

GENERATE = [
    """
    CREATE FUNCTION pg_temp.rnd(salt text, id bigint) RETURNS double precision IMMUTABLE LANGUAGE sql
    AS $$ SELECT (hashtext(salt || ':' || id)::bigint + 2147483648) / 4294967296.0 $$
    """,
    """
    INSERT INTO contact (email, email_key, email_hash, first_name, last_name, phone, postal_code, language, role,
                         status, bereaved, soft_bounces, created_at, updated_at)
    SELECT 'p' || g || '@example.org', 'p' || g || '@example.org', md5(g::text) || md5('s' || g::text),
           'First' || g, 'Last' || g, '', '30301', CASE WHEN g % 5 = 0 THEN 'es' ELSE 'en' END, 'supporter',
           'active', false, 0, now(), now()
    FROM generate_series(1, :n) g
    """,
    """
    INSERT INTO subscription (contact_id, list, state, frequency, created_at, confirmed_at)
    SELECT id, 'newsletter', 'confirmed', 'weekly', now(), now() FROM contact
    """,
    # About two interests per person; everyone has at least one.
    """
    INSERT INTO contact_interest (interest_key, contact_id)
    SELECT DISTINCT k.key, c.id FROM contact c
    JOIN (SELECT key, row_number() OVER (ORDER BY key) - 1 AS n FROM interest) k
      ON k.n = c.id % 11 OR pg_temp.rnd(k.key, c.id) < 0.09
    """,
    """
    INSERT INTO content_item (title, url, summary, language, published_at, created_at, updated_at)
    SELECT 'Article ' || g, 'https://example.org/articles/' || g,
           'What the research says, what to ask your care team, and where to find support: article ' || g || '.',
           CASE WHEN g % 5 = 0 THEN 'es' ELSE 'en' END, now() - (g * (744.0 / :items)) * interval '1 hour', now(),
           now()
    FROM generate_series(1, :items) g
    """,
    """
    INSERT INTO content_topic (content_id, interest_key)
    SELECT DISTINCT i.id, k.key FROM content_item i
    JOIN (SELECT key, row_number() OVER (ORDER BY key) - 1 AS n FROM interest) k
      ON k.n = i.id % 11 OR (i.id % 2 = 0 AND k.n = (i.id * 7) % 11)
    """,
]


class DiscardSender:
    """Accepts every message and keeps nothing: measures the pipeline, not a mail server."""

    sent = 0

    def send(self, message: Any) -> None:
        DiscardSender.sent += 1

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        DiscardSender.sent += 1

    def close(self) -> None:
        pass


def fresh_database(url: str) -> str:
    base = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return base.set(database=DB_NAME).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    engine_for.cache_clear()
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg", database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


def send_everything(settings: Settings, campaign_id: int) -> int:
    before = DiscardSender.sent
    sender = DiscardSender()
    while pipeline.send_some(settings, campaign_id, sender, max_seconds=600).has_more:  # type: ignore[arg-type]
        pass
    return DiscardSender.sent - before


def recipients(settings: Settings, campaign_id: int) -> int:
    with session_scope(settings) as s:
        return s.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id)) or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--plan-only", action="store_true", help="time planning alone (quick look at the SQL)")
    args = parser.parse_args()

    url = fresh_database(args.url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    settings = load_settings(env="development", var_dir=tmp, database_url=url, broker_url="memory://",
                             mail_backend="memory", secret_key="bench-secret", webhook_secret="bench",
                             send_rate=1_000_000, send_batch_size=500, instance="benchdigest")
    try:
        upgrade(settings)
        t = time.perf_counter()
        with engine_for(url).begin() as conn:
            for stmt in GENERATE:
                conn.execute(text(stmt), {"n": args.contacts, "items": args.items})
        with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"setup: {args.contacts} contacts, {args.items} content items, PostgreSQL, one process, "
              f"batch {settings.send_batch_size}, discarding sender; generated in {time.perf_counter() - t:.1f}s")

        # Baseline: a broadcast to the same list.
        t = time.perf_counter()
        with session_scope(settings) as s:
            cid = campaigns.create(s, settings, {"name": "Bench broadcast", "subject": "News for {{ contact.first_name }}",
                                                 "body_html": "<p>Dear {{ contact.first_name }},</p><p>News.</p>"},
                                   "bench@example.org").id
            campaigns.launch(s, settings, cid)
        planning.plan(settings, cid)
        b_plan = time.perf_counter() - t
        if args.plan_only:
            t = time.perf_counter()
            with session_scope(settings) as s:
                run = digests.plan_run(s, settings, "weekly")
            print(f"plan only: broadcast {b_plan:.2f}s, digest {time.perf_counter() - t:.2f}s "
                  f"({run.recipients} recipients, {run.items} items)")
            return
        t = time.perf_counter()
        b_sent = send_everything(settings, cid)
        b_send = time.perf_counter() - t
        b_total = b_plan + b_send

        # The digest run.
        t = time.perf_counter()
        with session_scope(settings) as s:
            run = digests.plan_run(s, settings, "weekly")
        d_plan = time.perf_counter() - t
        t = time.perf_counter()
        d_sent = send_everything(settings, run.run_id)
        d_send = time.perf_counter() - t
        d_total = d_plan + d_send

        print(f"broadcast: plan {b_plan:7.2f}s  send {b_send:7.2f}s  total {b_total:7.2f}s  "
              f"{recipients(settings, cid)} recipients, {b_sent} sent, {b_sent / b_total:,.0f} msg/s")
        print(f"digest:    plan {d_plan:7.2f}s  send {d_send:7.2f}s  total {d_total:7.2f}s  "
              f"{run.recipients} recipients, {run.items} items, {d_sent} sent, {d_sent / d_total:,.0f} msg/s")
        per_b = b_total / max(1, b_sent)
        per_d = d_total / max(1, d_sent)
        print(f"ratio digest/broadcast: {d_total / b_total:.2f}x total, {per_d / per_b:.2f}x per message "
              f"(goal <= 1.5x)")
    finally:
        if not args.keep:
            drop_database(args.url)


if __name__ == "__main__":
    main()
