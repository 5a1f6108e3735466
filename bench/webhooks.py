"""Outgoing webhooks: throughput and latency to a fast endpoint beside a slow and a failing one.

    python bench/webhooks.py [--events 10000] [--baseline 3000] [--paced 1000] [--rate 200] [--workers 2]
                             [--drain 0]

(a) baseline: plain signed POSTs (Standard Webhooks headers, one reused connection) from one
    process to the fast receiver, one after another: the ceiling for a simple sender.
(b) pipeline: --events events written in 100-event transactions as fast as possible, fanned out
    to 3 endpoints (fast: answers 200 at once; slow: answers after 2 s; failing: 500), delivered by
    real Celery workers (+ beat) on PostgreSQL + Redis. Deliveries/s to the fast endpoint, from the
    first event written to the last delivery received. Goal: >= 0.5 x (a).
(b0) with --drain N: N events written before the worker starts, then delivered: deliveries/s to the
    fast endpoint from its first arrival to its last, the pipeline's rate when the event writer (which
    shares the machine) does not bound it.
(c) latency: --paced more events at --rate per second; event-to-delivery p50/p99 at the fast
    endpoint (occurred_at to arrival). Goal: p99 < 2 s.

Receivers run in their own process. Needs PostgreSQL and Redis (CRM_BENCH_DATABASE_URL,
CRM_BENCH_REDIS_URL); a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.send import free_port, scratch_database, worker_env  # noqa: E402


def _receivers_main(ports: list[int], arrivals: Any, ready: Any) -> None:
    """fast (200), slow (2 s, then 200), failing (500); the fast one records each webhook-id's arrival."""
    lock = threading.Lock()

    def handler(kind: str) -> type[BaseHTTPRequestHandler]:
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if kind == "slow":
                    time.sleep(2)
                if kind == "fast":
                    with lock:
                        arrivals.put((self.headers.get("webhook-id"), time.time()))
                self.send_response(500 if kind == "failing" else 200)
                self.send_header("content-length", "0")
                self.end_headers()
        return H

    servers = [ThreadingHTTPServer(("127.0.0.1", p), handler(k)) for p, k in zip(ports, ("fast", "slow", "failing"),
                                                                                   strict=True)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ready.set()
    while True:
        time.sleep(3600)


def bench_baseline(url: str, n: int) -> float:
    import httpx

    from crm.webhooks import signing

    secret = signing.new_secret()
    body = '{"type":"contact.updated","timestamp":"2026-01-01T00:00:00Z","data":{"contact_id":1}}'
    with httpx.Client(timeout=15, follow_redirects=False) as client:
        t0 = time.perf_counter()
        for i in range(n):
            ts = int(time.time())
            wid = f"base_{i}"
            client.post(url, content=body, headers={"content-type": "application/json", "webhook-id": wid,
                                                    "webhook-timestamp": str(ts),
                                                    "webhook-signature": signing.sign(secret, wid, ts, body)})
        return n / (time.perf_counter() - t0)


def write_events(settings: Any, n: int, start: int, *, rate: float | None = None, batch: int = 100) -> dict[str, float]:
    """n events (contact.updated for distinct contacts), `batch` per transaction; returns msg id -> time written."""
    from crm.db import session_scope
    from crm.events import service as events

    written: dict[str, float] = {}
    t0 = time.time()
    for b in range(0, n, batch):
        if rate:
            wait = t0 + b / rate - time.time()
            if wait > 0:
                time.sleep(wait)
        with session_scope(settings) as s:
            ids = [events.record(s, "contact.updated", start + i, email=f"p{start + i}@example.org",
                                 changed=["first_name"]) for i in range(b, min(n, b + batch))]
        now = time.time()
        for i in ids:
            written[f"msg_{i}"] = now
    return written


def cpu_seconds(recv_pid: int, db_name: str) -> dict[str, float]:
    """CPU used so far (Linux /proc) by this process (the writer), the worker's processes, the receivers
    and this database's PostgreSQL backends: where (b)'s time goes on a shared machine."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid, fields = int(proc.name), stat.rsplit(")", 1)[1].split()
        group = ("writer" if pid == os.getpid() else "receivers" if pid == recv_pid
                 else "worker" if "celery" in cmd and "worker.celery_app" in cmd
                 else "postgres" if cmd.startswith("postgres:") and f" {db_name} " in cmd else None)
        if group:
            used[group] = used.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def collect(arrivals: Any, wanted: set[str], timeout: float) -> dict[str, float]:
    got: dict[str, float] = {}
    deadline = time.time() + timeout
    while wanted - set(got) and time.time() < deadline:
        try:
            wid, at = arrivals.get(timeout=1)
        except Exception:  # noqa: BLE001 - queue.Empty
            continue
        got.setdefault(wid, at)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--baseline", type=int, default=3_000)
    ap.add_argument("--paced", type=int, default=1_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--drain", type=int, default=0, help="(b0): events written before the worker starts")
    ap.add_argument("--worker-log", type=Path, default=None, help="keep the worker's log here (default: dropped)")
    args = ap.parse_args()

    from crm.config import load_settings
    from crm.db import session_scope
    from crm.migrate import upgrade
    from crm.webhooks import service

    ports = [free_port() for _ in range(3)]
    arrivals: Any = mp.Queue()
    ready = mp.Event()
    recv = mp.Process(target=_receivers_main, args=(ports, arrivals, ready), daemon=True)
    recv.start()
    ready.wait(10)
    fast, slow, failing = (f"http://127.0.0.1:{p}/hook" for p in ports)

    db_url, drop = scratch_database(os.environ.get("CRM_BENCH_DATABASE_URL",
                                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    redis_url = os.environ.get("CRM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings(database_url=db_url, broker_url=redis_url, redis_url=redis_url, mail_backend="memory",
                             secret_key="bench", webhook_secret="bench", instance=f"bench{uuid.uuid4().hex[:6]}",
                             var_dir=Path(f"/tmp/crm-bench-{uuid.uuid4().hex[:6]}"), webhook_dispatch_seconds=0.5)
    worker: subprocess.Popen[bytes] | None = None
    try:
        upgrade(settings)
        base = bench_baseline(fast, args.baseline)
        while not arrivals.empty():
            arrivals.get()
        print(f"load average {os.getloadavg()[0]:.1f}; setup: {os.cpu_count()} cores, PostgreSQL + Redis, receivers in their own process, "
              f"one Celery worker (--concurrency {args.workers}) with beat, dispatch every 0.5 s")
        print(f"(a) baseline: {base:,.0f} signed POSTs/s (one process, one connection, {args.baseline} POSTs)")
        with session_scope(settings) as s:
            for url in (fast, slow, failing):
                service.create(s, settings, {"url": url, "events": ["*"]})
        t0 = time.time()
        backlog = write_events(settings, args.drain, 1)
        wrote = time.time() - t0
        env = worker_env(settings)
        env["CRM_WEBHOOK_DISPATCH_SECONDS"] = "0.5"
        log = open(args.worker_log, "wb") if args.worker_log else subprocess.DEVNULL  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--beat", "--concurrency",
             str(args.workers), "--without-gossip", "--without-mingle",
             "--loglevel", "info" if args.worker_log else "warning",
             "--schedule", str(settings.var_dir / "beat-schedule")],
            env=env, cwd=ROOT, stdout=log, stderr=log)
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        time.sleep(3)  # the worker and beat come up
        if args.drain:
            got = collect(arrivals, set(backlog), timeout=600)
            first, last = min(got.values()), max(got.values())
            rate = (len(got) - 1) / (last - first)
            print(f"(b0) drain: {len(got)}/{args.drain} events written first ({args.drain / wrote:,.0f}/s, no worker "
                  f"running), delivered to the fast endpoint at {rate:,.0f}/s = {rate / base:.2f} x baseline "
                  f"(first to last arrival)")

        cpu0 = cpu_seconds(recv.pid or 0, db_url.rsplit("/", 1)[1])
        t0 = time.time()
        written = write_events(settings, args.events, 1 + args.drain)
        wrote = time.time() - t0  # the writer shares the machine too: (b) cannot beat its rate
        got = collect(arrivals, set(written), timeout=600)
        elapsed = max(got.values()) - t0 if got else float("inf")
        rate = len(got) / elapsed
        cpu = cpu_seconds(recv.pid or 0, db_url.rsplit("/", 1)[1])
        lat = sorted(got[w] - written[w] for w in got)
        print(f"(b) pipeline: {len(got)}/{args.events} delivered to the fast endpoint in {elapsed:.1f} s = "
              f"{rate:,.0f}/s = {rate / base:.2f} x baseline (goal >= 0.5 x); backlog latency p99 "
              f"{lat[int(len(lat) * 0.99) - 1]:.2f} s; the events were written in {wrote:.1f} s "
              f"({args.events / wrote:,.0f}/s)")
        print("(b) CPU per event: " + ", ".join(f"{g} {(cpu[g] - cpu0.get(g, 0.0)) * 1000 / args.events:.2f} ms"
                                                       for g in sorted(cpu)) + f" (over {elapsed:.1f} s on 2 cores)")

        written = write_events(settings, args.paced, 1 + args.drain + args.events, rate=args.rate, batch=10)
        got = collect(arrivals, set(written), timeout=120)
        lat = sorted(got[w] - written[w] for w in got)
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
        print(f"(c) latency at {args.rate:g} events/s: {len(got)}/{args.paced} delivered, event-to-delivery "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (goal p99 < 2 s)")
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        recv.terminate()
        drop()


if __name__ == "__main__":
    main()
