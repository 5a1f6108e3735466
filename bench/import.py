"""CSV contact import: rows per second and peak memory, against a raw batched INSERT of the same rows.

    python bench/import.py [--rows 100000] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Without --url: a fresh SQLite file in a temporary directory. With --url: a dedicated fresh PostgreSQL
database (crm_bench_import) created on that server and dropped afterwards. Both migrated with the real
Alembic migrations. Steps, in one run:
1. write a realistic CSV (names, roles, languages, 1-3 interests, tags, a third with consented
   newsletter subscriptions);
2. import --rows/10 of it, then all of it, through crm.contacts.importer (exactly what the Celery task
   and `crm import contacts` run), sampling the process RSS every 20 ms: peak RSS above the level before
   the import, so "bounded memory" reads as the 10x file costing about the same memory;
3. re-import the same file (the idempotent path: nothing changes);
4. baseline: delete the contacts and insert the same rows (contacts, interests, tags) with plain
   batched executemany INSERTs of 1000, no validation, no dedupe, no consent records.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, delete, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from crm.config import load_settings  # noqa: E402
from crm.contacts import importer  # noqa: E402
from crm.contacts import service as contacts  # noqa: E402
from crm.contacts.models import ConsentEvent, Contact, ContactInterest, ContactTag, Subscription  # noqa: E402
from crm.db import engine_for  # noqa: E402
from crm.jobs import service as jobs  # noqa: E402
from crm.migrate import upgrade  # noqa: E402

DB_NAME = "crm_bench_import"
INTERESTS = ["cancer-information", "treatment-and-side-effects", "clinical-trials", "caregiving",
             "tobacco-cessation", "patient-programs", "volunteering", "research-news"]
ROLES = ["", "patient", "caregiver", "family", "survivor", "supporter"]
FIRST = ["Ana", "James", "María", "Linda", "Sam", "Grace", "Tom", "Deb", "Kwame", "Mei"]
LAST = ["López", "Carter", "Nguyen", "Okafor", "Kim", "Reyes", "Silva", "Walsh", "Patel", "Smith"]


def write_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,first_name,last_name,language,role,interests,tags,postal_code,subscribe,consent\n")
        for i in range(rows):
            sub = rnd.random() < 0.33
            fh.write(f"person{i}@example.org,{rnd.choice(FIRST)},{rnd.choice(LAST)},"
                     f"{'es' if rnd.random() < 0.2 else 'en'},{rnd.choice(ROLES)},"
                     f"{';'.join(rnd.sample(INTERESTS, rnd.randint(1, 3)))},walk-2026,{rnd.randint(10000, 99999)},"
                     f"{'newsletter' if sub else ''},{'yes' if sub else ''}\n")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    def __enter__(self) -> PeakRss:
        self.base = self.peak = rss()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss())

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss())

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def run_import(url: str, path: Path, limit: int | None = None) -> tuple[float, Any, PeakRss]:
    engine = engine_for(url)
    data: Any = path.open("rb")
    if limit is not None:
        head = b"".join(line for _, line in zip(range(limit + 1), data, strict=False))
        data.close()
        data = io.BytesIO(head)
    with PeakRss() as mem:
        start = time.perf_counter()
        with Session(engine, expire_on_commit=False) as s:
            job = jobs.create_job(s, importer.KIND, data, path.name, "bench@example.org")
            s.commit()
            job = importer.run(s, job.id)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
    data.close()
    return elapsed, job, mem


def baseline(url: str, path: Path) -> float:
    """The same rows with plain batched INSERTs: what the database costs without the import's care."""
    engine = engine_for(url)
    with Session(engine) as s:
        for table in (ConsentEvent, Subscription, ContactInterest, ContactTag, Contact):
            s.execute(delete(table))
        s.commit()
    start = time.perf_counter()
    with Session(engine) as s, path.open(encoding="utf-8", newline="") as fh:
        import csv

        reader = csv.DictReader(fh)
        salt = contacts._salt(s)
        import hashlib

        next_id = 1_000_000_000  # explicit ids: no RETURNING round trip in the baseline
        while True:
            batch = [r for _, r in zip(range(1000), reader, strict=False)]
            if not batch:
                break
            ids = list(range(next_id, next_id + len(batch)))
            next_id += len(batch)
            rows = [{"id": cid, "email": r["email"], "email_key": r["email"],
                     "email_hash": hashlib.sha256(f"{salt}:{r['email']}".encode()).hexdigest(),
                     "first_name": r["first_name"], "last_name": r["last_name"], "phone": "",
                     "postal_code": r["postal_code"], "language": r["language"], "role": r["role"] or None,
                     "status": "active", "bereaved": False, "soft_bounces": 0}
                    for cid, r in zip(ids, batch, strict=True)]
            s.execute(insert(Contact), rows)
            s.execute(insert(ContactInterest), [{"contact_id": cid, "interest_key": k}
                                                 for cid, r in zip(ids, batch, strict=True)
                                                 for k in r["interests"].split(";")])
            s.execute(insert(ContactTag), [{"contact_id": cid, "tag": r["tags"]} for cid, r in zip(ids, batch,
                                                                                               strict=True)])
            s.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_IMPORT_ROWS", "100000")))
    parser.add_argument("--url", help="a PostgreSQL server URL (a fresh database is created on it)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-import-"))
    admin = None
    if args.url:
        base = make_url(args.url).set(drivername="postgresql+psycopg")
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        url = base.set(database=DB_NAME).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        upgrade(load_settings(database_url=url, var_dir=tmp / "var", secret_key="bench", webhook_secret="bench"))
        path = tmp / "contacts.csv"
        write_csv(path, args.rows)
        small = max(1, args.rows // 10)
        t_small, _, mem_small = run_import(url, path, small)
        with Session(engine_for(url)) as s:
            for table in (ConsentEvent, Subscription, ContactInterest, ContactTag, Contact):
                s.execute(delete(table))
            s.commit()
        t_full, job, mem_full = run_import(url, path)
        t_again, job_again, _ = run_import(url, path)
        t_base = baseline(url, path)
        db = "PostgreSQL" if args.url else "SQLite"
        print(f"setup: {db}, {args.rows} CSV rows ({path.stat().st_size / 2**20:.1f} MiB), batches of "
              f"{importer.BATCH}, Python {sys.version.split()[0]}")
        print(f"import {small} rows:  {t_small:7.2f} s  {small / t_small:9.0f} rows/s  peak RSS +{mem_small.delta_mib:.1f} MiB")
        print(f"import {args.rows} rows: {t_full:7.2f} s  {args.rows / t_full:9.0f} rows/s  "
              f"peak RSS +{mem_full.delta_mib:.1f} MiB  (created {job.created}, errors {job.error_count})")
        print(f"re-import (no change):  {t_again:7.2f} s  {args.rows / t_again:9.0f} rows/s  "
              f"(created {job_again.created}, updated {job_again.updated}, unchanged {job_again.unchanged})")
        print(f"baseline raw INSERTs:   {t_base:7.2f} s  {args.rows / t_base:9.0f} rows/s")
        print(f"ratio import / baseline: {t_full / t_base:.2f}x;  memory 10x rows / 1x rows: "
              f"{mem_full.delta_mib / max(mem_small.delta_mib, 0.1):.2f}x")
    finally:
        engine_for.cache_clear()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
