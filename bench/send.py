"""Campaign sending throughput, planning time and worker memory, each against a baseline from the same run.

    python bench/send.py [--recipients 50000] [--plan 1000000] [--raw 5000] [--workers N] [--connections N]
                         [--sending-only]

(a) raw transport: one process sends pre-built messages of the campaign's own size over one reused
    SMTP connection to a local sink that counts and discards (its own process): the ceiling for one
    sender. Measured before and after (b), which is set against the mean (the machine is shared).
    Also printed: the same over --connections connections in rounds, as the pipeline sends.
(b) full pipeline: the personalised campaign to --recipients people on PostgreSQL + Redis, through
    real Celery workers (--workers, default one per core) holding --connections SMTP connections each
    (CRM_SMTP_CONNECTIONS), timed from the sink's first message to the campaign's `sent` (worker
    start-up, task pick-up and planning are not sending). Goal: per worker process >= 0.6 x (a).
(c) planning: the INSERT ... SELECT of --plan deliveries. Goal: < 60 s.
(d) sender RSS after sending from a 10k-recipient campaign and from the --plan one. Goal:
    growth < 50 MB (the audience is never loaded into Python).

Needs PostgreSQL and Redis (CRM_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
CRM_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0). A scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the sink: a minimal SMTP server that counts and discards ---------------------------------


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: Any) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line[:4].upper()
            if cmd == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                with counter.get_lock():
                    counter.value += 1
                writer.write(b"250 2.0.0 accepted\r\n")
            elif cmd in (b"EHLO", b"HELO"):
                writer.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n" if cmd == b"EHLO"
                             else b"250 sink\r\n")
            elif cmd == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _sink_main(port: int, counter: Any, ready: Any) -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _session(r, w, counter), "127.0.0.1", port,
                                            limit=1 << 22)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


# --- helpers ----------------------------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


FILLER = ("<p>Living with cancer brings questions about treatment, side effects and everyday life. Our nurses "
          "answer them around the clock, and our guides explain what to ask your doctor.</p>\n")


def campaign_body(target_bytes: int = 8_000) -> str:
    head = "<h1>Hello {{ contact.first_name }}</h1>\n"
    return head + FILLER * (target_bytes // len(FILLER))


def raw_message(size: int = 20_000) -> bytes:
    head = (b"From: <news@example.org>\r\nTo: <a@example.org>\r\nSubject: raw\r\n"
            b"Message-ID: <raw@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
    body = ("x" * 75 + "\r\n") * max(1, (size - len(head)) // 77)
    return head + body.encode()


def bench_raw(settings: Any, n: int, size: int, connections: int = 1) -> float:
    """The transport the pipeline uses (PIPELINING when offered), no database, no rendering: one
    connection, or `connections` of them taken in rounds (RoundSender, as the pipeline does)."""
    from crm.mail import SmtpSender

    data = raw_message(size)
    if connections == 1:
        sender: Any = SmtpSender(settings)
        start = time.perf_counter()
        for _ in range(n):
            sender.send_raw("news@example.org", "a@example.org", data, "<raw@example.org>")
    else:
        from crm.mail import RoundSender

        sender = RoundSender(settings, connections)
        start = time.perf_counter()
        for i in range(n):
            sender.collect(lambda *_: None)
            sender.submit("news@example.org", "a@example.org", data, "<raw@example.org>", i)
        sender.drain(lambda *_: None)
    elapsed = time.perf_counter() - start
    sender.close()
    return n / elapsed


def scratch_database(base_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(base_url).set(drivername="postgresql+psycopg")
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from crm.db import engine_for

        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return u.set(database=name).render_as_string(hide_password=False), drop


def bulk_contacts(settings: Any, n: int, prefix: str) -> None:
    """n confirmed newsletter contacts in two INSERT ... SELECT FROM generate_series statements."""
    from sqlalchemy import text

    from crm.db import session_scope

    with session_scope(settings) as s:
        s.execute(text("""
            INSERT INTO contact (email, email_key, email_hash, first_name, last_name, phone, postal_code, language,
                                 status, bereaved, soft_bounces, created_at, updated_at)
            SELECT :p || g || '@example.org', :p || g || '@example.org', md5(:p || g), 'Name' || g, '', '', '',
                   'en', 'active', false, 0, now(), now()
            FROM generate_series(1, :n) AS g"""), {"p": prefix, "n": n})
        s.execute(text("""
            INSERT INTO subscription (contact_id, list, state, frequency, created_at, confirmed_at)
            SELECT id, 'newsletter', 'confirmed', 'weekly', now(), now() FROM contact WHERE email_key LIKE :like
            """), {"like": f"{prefix}%"})


def clear_audience(settings: Any) -> None:
    from sqlalchemy import text

    from crm.db import session_scope

    with session_scope(settings) as s:
        s.execute(text("UPDATE subscription SET state = 'unsubscribed' WHERE state = 'confirmed'"))


def new_campaign(settings: Any, name: str) -> int:
    from crm.campaigns import service
    from crm.db import session_scope

    with session_scope(settings) as s:
        c = service.create(s, settings, {"name": name, "subject": "News for {{ contact.first_name }}",
                                         "body_html": campaign_body()}, "bench")
        return c.id  # type: ignore[return-value]


def worker_env(settings: Any, connections: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    for name in ("database_url", "broker_url", "redis_url", "mail_backend", "smtp_host", "smtp_port", "secret_key",
                 "webhook_secret", "instance", "send_rate", "send_batch_size", "lease_seconds", "var_dir"):
        env[f"CRM_{name.upper()}"] = str(getattr(settings, name))
    env["CRM_SMTP_CONNECTIONS"] = str(connections)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _rss_child(settings: Any, campaign_id: int, seconds: float, out: Any) -> None:
    from crm.campaigns import pipeline

    summary = pipeline.send_some(settings, campaign_id, max_seconds=seconds)
    out.put((rss_mb(), summary.sent))


def sender_rss(settings: Any, campaign_id: int, seconds: float) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_rss_child, args=(settings, campaign_id, seconds, q))
    p.start()
    result = q.get(timeout=seconds + 120)
    p.join(30)
    return result  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipients", type=int, default=50_000)
    ap.add_argument("--plan", type=int, default=1_000_000)
    ap.add_argument("--raw", type=int, default=5_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--connections", type=int, default=4, help="SMTP connections per worker (CRM_SMTP_CONNECTIONS)")
    ap.add_argument("--sending-only", action="store_true", help="(a) and (b) only")
    args = ap.parse_args()

    from sqlalchemy import text

    from crm import queue
    from crm.campaigns import pipeline, planning, proofs, service
    from crm.celery_publisher import CeleryPublisher
    from crm.config import load_settings
    from crm.db import session_scope, utcnow
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
    var = Path(f"/tmp/crm-bench-{uuid.uuid4().hex[:6]}")
    settings = load_settings(database_url=db_url, broker_url=redis_url, redis_url=redis_url, mail_backend="smtp",
                             smtp_host="127.0.0.1", smtp_port=port, secret_key="bench", webhook_secret="bench",
                             instance=f"bench{uuid.uuid4().hex[:6]}", send_rate=1_000_000.0,
                             send_batch_size=args.batch, lease_seconds=300, var_dir=var)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(settings)
        queue.install(CeleryPublisher(settings))  # launch's plan task goes to the workers' broker
        print(f"setup: {os.cpu_count()} cores, PostgreSQL + Redis, sink in its own process, "
              f"{args.workers} worker processes with {args.connections} SMTP connections each, batch {args.batch}")

        bulk_contacts(settings, args.recipients, "b")
        cid = new_campaign(settings, "bench-b")
        with session_scope(settings) as s:
            size = len(pipeline.CampaignSender(settings, s, service.get(s, cid))
                       .message(proofs.sample_person())[1] or b"")

        # (a)
        raw_rate = bench_raw(settings, args.raw, size)
        print(f"(a) raw transport: {raw_rate:,.0f} msg/s (pre-built {size / 1000:.1f} KB, one connection, "
              f"one process, {args.raw} messages)")
        if args.connections > 1:
            raw_n = bench_raw(settings, args.raw, size, args.connections)
            print(f"    the same over {args.connections} connections in rounds: {raw_n:,.0f} msg/s")

        # (b)
        for i in range(args.workers):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--concurrency", "1",
                 "--without-gossip", "--without-mingle", "--loglevel", "warning", "-n", f"bench{i}@%h"],
                env=worker_env(settings, args.connections), cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        time.sleep(4)  # workers up
        start_count = counter.value
        t_launch = time.perf_counter()
        with session_scope(settings) as s:
            service.launch(s, settings, cid)  # queues the plan task on commit
        t0 = None
        while True:
            if t0 is None and counter.value > start_count:
                t0 = time.perf_counter()
            with session_scope(settings) as s:
                if service.get(s, cid).state == "sent":
                    break
            time.sleep(0.05)
        t_end = time.perf_counter()
        elapsed = t_end - (t0 or t_launch)
        delivered = counter.value - start_count
        rate = args.recipients / elapsed
        per = rate / args.workers
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
        workers.clear()
        # The machine is shared: (a) again right after (b), and (b) set against the mean of the two.
        raw_after = bench_raw(settings, args.raw, size)
        raw_mean = (raw_rate + raw_after) / 2
        print(f"(a) again after (b): {raw_after:,.0f} msg/s; mean {raw_mean:,.0f}")
        print(f"(b) full pipeline: {args.recipients:,} personalised messages of {size / 1000:.1f} KB in "
              f"{elapsed:.1f} s = {rate:,.0f} msg/s, {per:,.0f} per worker process = {per / raw_mean:.2f} x (a) "
              f"(goal >= 0.6); launch to sent {t_end - t_launch:.1f} s; sink counted {delivered:,}")
        clear_audience(settings)
        if args.sending_only:
            return

        # (c)
        bulk_contacts(settings, args.plan, "c")
        cid_plan = new_campaign(settings, "bench-c")
        with session_scope(settings) as s:
            service.launch(s, settings, cid_plan)
        t0 = time.perf_counter()
        with session_scope(settings) as s:
            planned = planning.plan_deliveries(s, service.get(s, cid_plan))
            service.get(s, cid_plan).planned_at = utcnow()
        plan_s = time.perf_counter() - t0
        print(f"(c) planning {planned:,} deliveries (one INSERT ... SELECT ... ON CONFLICT DO NOTHING): "
              f"{plan_s:.1f} s (goal < 60 s)")

        # (d)
        small_contacts = 10_000
        with session_scope(settings) as s:
            s.execute(text("UPDATE subscription SET state = 'confirmed' WHERE contact_id IN "
                           "(SELECT id FROM contact WHERE email_key LIKE 'b%' ORDER BY id LIMIT :n)"),
                      {"n": small_contacts})
        cid_small = new_campaign(settings, "bench-d")
        with session_scope(settings) as s:
            service.launch(s, settings, cid_small)
        with session_scope(settings) as s:
            s.execute(text("UPDATE subscription SET state = 'unsubscribed' WHERE list = 'newsletter' AND "
                           "contact_id IN (SELECT id FROM contact WHERE email_key LIKE 'c%')"))
        planning.plan(settings, cid_small)
        rss_small, sent_small = sender_rss(settings, cid_small, 8)
        with session_scope(settings) as s:
            s.execute(text("UPDATE subscription SET state = 'confirmed' WHERE list = 'newsletter' AND "
                           "contact_id IN (SELECT id FROM contact WHERE email_key LIKE 'c%')"))
        rss_big, sent_big = sender_rss(settings, cid_plan, 8)
        print(f"(d) sender RSS: {rss_small:.0f} MB on a {small_contacts:,}-recipient campaign ({sent_small:,} sent), "
              f"{rss_big:.0f} MB on a {planned:,}-recipient one ({sent_big:,} sent): growth "
              f"{rss_big - rss_small:+.0f} MB (goal < 50 MB)")
    finally:
        for w in workers:
            w.kill()
        sink.terminate()
        drop()


if __name__ == "__main__":
    main()
