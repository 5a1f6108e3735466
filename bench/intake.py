"""Newsletter intake over loopback against PostgreSQL, as a ratio to a one-row-commit baseline.

    /work/venv/bin/python bench/intake.py                    # default: 16 and 64 clients, ~4 minutes
    /work/venv/bin/python bench/intake.py --clients 16       # one client count, < 2 minutes
    /work/venv/bin/python bench/intake.py --sqlite           # the embedded default's database instead
    /work/venv/bin/python bench/intake.py --quick            # a smoke run

Set-up (printed with the figures): a fresh PostgreSQL database (or, with --sqlite, a fresh SQLite
file) migrated to head; the real API
(`crm.asgi:app`, uvicorn, one worker process) with a Redis broker for the after-commit wake-ups
and no Celery worker (the queue is thrown away afterwards); the baseline (bench/baseline/newsletter_app.py:
the same JSON validated the same way, one row committed in one transaction) under the same
uvicorn flags on the same database. Both run one after the other in this run, each server measured at
every client count of --clients before it stops, and every figure printed comes from this run.

Phases per server: a closed loop of N clients (keep-alive) for the peak rate and its latency,
then an open loop at 80 % of that peak (arrivals on a fixed schedule, latency measured from the
scheduled time so a stalled server cannot hide its queue) for p99 at 80 % of peak.

The load generator is a minimal HTTP/1.1 client on raw asyncio streams, so it costs the
two shared cores as little as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import free_port, wait_http  # noqa: E402

INTERESTS = ["cancer-information", "caregiving", "clinical-trials", "tobacco-cessation", "research-news"]


@dataclass
class Result:
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


class Conn:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the status and the body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes) -> int:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nUser-Agent: crm-bench\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Bodies:
    """A fresh address per request: every signup is a new person, as on a busy campaign day."""

    def __init__(self, tag: str) -> None:
        self.tag, self.n = tag, 0

    def next(self) -> bytes:
        self.n += 1
        return json.dumps({
            "email": f"bench.{self.tag}.{self.n}@example.org", "first_name": "Bench",
            "interests": random.sample(INTERESTS, 2), "language": "en", "frequency": "weekly", "consent": True,
            "source_url": "https://www.charity.example/newsletter",
        }).encode()


async def closed_loop(port: int, path: str, clients: int, seconds: float, bodies: Bodies) -> Result:
    conns = [await Conn.open("127.0.0.1", port) for _ in range(clients)]
    lat: list[float] = []
    counts = {"sent": 0, "ok": 0, "err": 0}
    stop_at = time.perf_counter() + seconds

    async def client(conn: Conn) -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            counts["sent"] += 1
            status = await conn.post(path, bodies.next())
            if status == 202:
                counts["ok"] += 1
                lat.append(time.perf_counter() - t0)
            else:
                counts["err"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return Result(counts["sent"], counts["ok"], counts["err"], elapsed, lat)


async def open_loop(port: int, path: str, rate: float, seconds: float, bodies: Bodies, pool: int) -> Result:
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(pool):
        free.put_nowait(await Conn.open("127.0.0.1", port))
    lat: list[float] = []
    counts = {"ok": 0, "err": 0}
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float) -> None:
        conn = await free.get()
        try:
            status = await conn.post(path, bodies.next())
        finally:
            free.put_nowait(conn)
        if status == 202:
            counts["ok"] += 1
            lat.append(time.perf_counter() - scheduled)  # from the scheduled time: no coordinated omission
        else:
            counts["err"] += 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not free.empty():
        free.get_nowait().close()
    return Result(total, counts["ok"], counts["err"], elapsed, lat)


def measure(name: str, port: int, path: str, clients: int, args: argparse.Namespace) -> tuple[Result, Result]:
    bodies = Bodies(f"{name}{uuid.uuid4().hex[:6]}")
    asyncio.run(closed_loop(port, path, clients, args.warmup, bodies))
    peak = asyncio.run(closed_loop(port, path, clients, args.seconds, bodies))
    at80 = asyncio.run(open_loop(port, path, 0.8 * peak.rate, args.seconds, bodies, pool=max(64, clients)))
    return peak, at80


# --- set-up ---------------------------------------------------------------------------------------


def create_database(server_url: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, base.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def start(argv: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health" if "crm.asgi:app" in argv else f"http://127.0.0.1:{port}/")
    except AssertionError:
        proc.kill()
        raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}") from None
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def uvicorn(app: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--workers", "1", *extra]


def _client_counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


# The p99 goal at 80 % of peak, per client count (issue #18): 100 ms at 16 clients, 250 ms at 64.
P99_GOAL = {16: 100.0, 64: 250.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases, for a smoke run")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 12)))
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=_client_counts, default=_client_counts(os.environ.get("BENCH_CLIENTS", "16,64")),
                        help="comma-separated client counts, each measured on both servers (default 16,64)")
    parser.add_argument("--database", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--sqlite", action="store_true", help="a fresh SQLite file instead of PostgreSQL")
    parser.add_argument("--broker", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 4.0, 1.0

    from crm.config import load_settings
    from crm.migrate import upgrade

    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    if args.sqlite:
        db_name, db_url = "", f"sqlite:///{logs / f'intake_{uuid.uuid4().hex[:8]}.db'}"
    else:
        db_name, db_url = create_database(args.database)
    instance = f"bench{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, int], tuple[Result, Result]] = {}
    try:
        upgrade(load_settings(database_url=db_url, var_dir=logs / "var"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(PYTHONPATH=str(ROOT), CRM_DATABASE_URL=db_url, CRM_BROKER_URL=args.broker,
                   CRM_MAIL_BACKEND="memory", CRM_SECRET_KEY="bench", CRM_WEBHOOK_SECRET="bench",
                   CRM_FORM_RATE_LIMIT="100000000", CRM_INSTANCE=instance, CRM_VAR_DIR=str(logs / "var"),
                   BENCH_DATABASE_URL=db_url)

        base_port = free_port()
        baseline_app = uvicorn("newsletter_app:app", base_port, "--app-dir", str(ROOT / "bench" / "baseline"))
        procs.append(start(baseline_app, env, base_port, logs / "baseline.log"))
        for n in args.clients:
            results["base", n] = measure("base", base_port, "/baseline/newsletter", n, args)
        stop(procs.pop())

        api_port = free_port()
        procs.append(start(uvicorn("crm.asgi:app", api_port), env, api_port, logs / "api.log"))
        for n in args.clients:
            results["api", n] = measure("api", api_port, "/api/v1/forms/newsletter", n, args)
        stop(procs.pop())
    finally:
        for p in procs:
            stop(p)
        if args.sqlite:
            for suffix in ("", "-wal", "-shm"):
                Path(db_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        else:
            drop_database(args.database, db_name)
        _drop_queue(args.broker, instance)

    engine = "SQLite (WAL, synchronous=NORMAL)" if args.sqlite else "PostgreSQL (synchronous_commit on)"
    print(f"intake benchmark: newsletter signups over loopback, {engine}, one uvicorn worker each")
    print(f"  set-up: {os.cpu_count()} cores shared with the load generator; per client count, keep-alive clients "
          f"in a closed loop ({args.seconds:.0f} s after {args.warmup:.0f} s warm-up), then an open loop at 80 % of "
          f"peak for {args.seconds:.0f} s; broker {args.broker} (no worker); load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for n in args.clients:
        api_peak, api80 = results["api", n]
        base_peak, base80 = results["base", n]
        print(f"  {n} clients:")
        for label, peak, at80 in (("baseline (validate + 1-row commit)", base_peak, base80),
                                  ("API POST /api/v1/forms/newsletter", api_peak, api80)):
            print(f"    {label:38s} peak {peak.rate:7.0f}/s  p50 {peak.pct(50):6.1f} ms  p99 {peak.pct(99):6.1f} ms"
                  f"  errors {peak.errors} | at {0.8 * peak.rate:5.0f}/s: p50 {at80.pct(50):6.1f} ms"
                  f"  p99 {at80.pct(99):6.1f} ms  errors {at80.errors}")
        ratio = api_peak.rate / base_peak.rate if base_peak.rate else float("nan")
        goal = P99_GOAL.get(n)
        print(f"    ratio API/baseline (peak): {ratio:.2f}   (goal >= 0.70)")
        print(f"    API p99 at 80 % of peak:   {api80.pct(99):.1f} ms" + (f" (goal < {goal:.0f} ms)" if goal else ""))
    return 0


def _drop_queue(broker: str, instance: str) -> None:
    if not broker.startswith("redis"):
        return
    import redis

    try:
        client = redis.Redis.from_url(broker)
        client.delete(instance, *client.keys(f"*{instance}*"))
    except Exception as exc:  # noqa: BLE001 - cleanup only
        print(f"(could not delete the bench queue {instance}: {exc})", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
