"""A journey step due for 100k people vs a campaign to the same 100k, in the same run (SPEC 13, issue 16).

    python bench/journeys.py [--people 100000] [--workers N] [--batch 500]

Set-up: PostgreSQL + Redis (CRM_BENCH_DATABASE_URL / CRM_BENCH_REDIS_URL as for bench/send.py; a scratch
database is created and dropped), the counting SMTP sink of bench/send.py in its own process, --workers
Celery worker processes (one sender each), CRM_SEND_RATE out of the way, quiet hours off.

(baseline) a campaign to the --people confirmed newsletter contacts: launch to `sent`.
(journey) the same people enrolled in an active journey (from their committed subscription.confirmed
events) whose one step waits a minute; the wait is then made to have passed, and the clock runs from the
tick that finds the step due (enrolments marked, deliveries INSERT ... SELECTed) to every delivery `sent`.
Goal: journey <= 1.2 x baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.send import (  # noqa: E402
    _sink_main,
    bulk_contacts,
    campaign_body,
    free_port,
    new_campaign,
    scratch_database,
    worker_env,
)


def _workers(settings: object, n: int) -> list[subprocess.Popen[bytes]]:
    env = {**worker_env(settings), "CRM_QUIET_HOURS": "", "CRM_JOURNEY_TICK_SECONDS": "3600"}
    return [subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
                              "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "warning",
                              "-n", f"jbench{i}@%h"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for i in range(n)]


def _wait_sent(settings: object, campaign_id: int, n: int, timeout: float = 3600) -> None:
    from sqlalchemy import func, select

    from crm.campaigns.models import Delivery
    from crm.db import session_scope

    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(settings) as s:  # type: ignore[arg-type]
            done = s.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id,
                                                       Delivery.status == "sent"))
        if done >= n:
            return
        time.sleep(0.2)
    raise SystemExit(f"campaign {campaign_id}: not all {n} sent after {timeout} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()

    from sqlalchemy import select, text

    from crm import queue
    from crm.campaigns import service as campaigns
    from crm.celery_publisher import CeleryPublisher
    from crm.config import load_settings
    from crm.contacts.models import Contact
    from crm.db import session_scope
    from crm.events import service as events
    from crm.journeys import service as journeys
    from crm.journeys import stepping
    from crm.journeys.models import JourneyCampaign
    from crm.migrate import upgrade

    port = free_port()
    counter = mp.Value("q", 0)
    ready = mp.Event()
    sink = mp.Process(target=_sink_main, args=(port, counter, ready), daemon=True)
    sink.start()
    ready.wait(10)
    db_url, drop = scratch_database(os.environ.get("CRM_BENCH_DATABASE_URL",
                                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    redis_url = os.environ.get("CRM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings(database_url=db_url, broker_url=redis_url, redis_url=redis_url, mail_backend="smtp",
                             smtp_host="127.0.0.1", smtp_port=port, secret_key="bench", webhook_secret="bench",
                             instance=f"jbench{uuid.uuid4().hex[:6]}", send_rate=1_000_000.0,
                             send_batch_size=args.batch, lease_seconds=300, quiet_hours="",
                             var_dir=Path(f"/tmp/crm-jbench-{uuid.uuid4().hex[:6]}"))
    queue.install(CeleryPublisher(settings))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(settings)
        print(f"setup: {os.cpu_count()} cores, PostgreSQL + Redis, sink in its own process, {args.workers} worker "
              f"processes, batch {args.batch}, {args.people:,} confirmed newsletter contacts")
        bulk_contacts(settings, args.people, "j")
        workers = _workers(settings, args.workers)
        time.sleep(4)

        # baseline: the campaign
        cid = new_campaign(settings, "baseline")
        t0 = time.perf_counter()
        with session_scope(settings) as s:
            campaigns.launch(s, settings, cid)
        _wait_sent(settings, cid, args.people)
        base = time.perf_counter() - t0
        print(f"(baseline) campaign to {args.people:,}: launch to all sent {base:.1f} s = {args.people / base:,.0f} msg/s")

        # the journey: enrol everyone from their confirmation events, step not yet due
        with session_scope(settings) as s:
            ids = list(s.scalars(select(Contact.id).order_by(Contact.id)))
            journey = journeys.create(s, settings, {
                "name": "bench", "trigger": {"event": "subscription.confirmed", "list": "newsletter"},
                "steps": [{"wait": {"minutes": 1}, "subject": "News for {{ contact.first_name }}",
                           "body_html": campaign_body()}]}, "bench")
            s.flush()
            journeys.activate(s, settings, journey.id)
            journey_id = journey.id
        for i in range(0, len(ids), 10_000):  # as an import writes them: a batch per transaction
            with session_scope(settings) as s:
                events.record_many(s, "subscription.confirmed", ids[i:i + 10_000], list="newsletter",
                                   state="confirmed")
        t_enrol = time.perf_counter()
        stepping.tick(settings)
        enrol_s = time.perf_counter() - t_enrol
        with session_scope(settings) as s:  # the minute has passed
            s.execute(text("UPDATE journey_enrolment SET anchor_at = anchor_at - interval '2 minutes'"))
        t0 = time.perf_counter()
        stepping.tick(settings)
        hand_s = time.perf_counter() - t0
        with session_scope(settings) as s:
            [jcid] = s.scalars(select(JourneyCampaign.campaign_id).where(JourneyCampaign.journey_id == journey_id))
        _wait_sent(settings, jcid, args.people)
        took = time.perf_counter() - t0
        print(f"(journey) enrolling {args.people:,} from events: {enrol_s:.1f} s; due to all sent {took:.1f} s "
              f"(hand-over tick {hand_s:.1f} s) = {args.people / took:,.0f} msg/s")
        print(f"journey / campaign = {took / base:.2f} x (goal <= 1.2); sink counted {counter.value:,}")
    finally:
        try:
            for w in workers:
                w.terminate()
            for w in workers:
                try:
                    w.wait(30)
                except subprocess.TimeoutExpired:
                    w.kill()
            sink.terminate()
        finally:
            drop()


if __name__ == "__main__":
    main()
