"""Engine and sessions, shared by the API, the worker and the tests."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from crm.config import Settings, get_settings


def _prepare_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _prepare_sqlite_path(url)
        # NullPool: each session gets a fresh connection, so WAL readers never hold a
        # stale snapshot across threads of the API's pool.
        engine = create_engine(url, poolclass=NullPool, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        # pysqlite's own transaction handling defers BEGIN; emit BEGIN IMMEDIATE ourselves so
        # writers queue on the lock instead of failing with "database is locked" on upgrade.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # Same 30-connection ceiling as before, but 20 kept open: with 10, a burst of 16 concurrent form posts
    # opened and closed overflow connections per request (a fork on the server each), which was
    # the intake's p99 at 80 % load (145 ms -> 7 ms in bench/intake.py).
    # No JIT: its compile time (0.3-0.6 s on a million-contact segment count, whose estimated cost crosses
    # jit_above_cost) is larger than any query here saves; every statement of this app is short.
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=10,
                         connect_args={"options": "-c jit=off"})


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return build_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).database_url)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    with Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def dialect_insert(session: Session) -> Any:
    """The dialect's insert() (with on_conflict_do_nothing/_do_update) for the session's database."""
    return pg_insert if is_postgres(session) else sqlite_insert


# --- column types shared by every domain's models -------------------------------------------



def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def today(settings: Settings, now: _dt.datetime | None = None) -> _dt.date:
    """The charity's calendar day (CRM_TIMEZONE): the one "today" for pauses, matching, digests, queues."""
    return (now or utcnow()).astimezone(ZoneInfo(settings.timezone)).date()


def iso(value: _dt.date | None) -> str | None:
    """A date or datetime as ISO 8601 for JSON, None kept."""
    return value.isoformat() if value is not None else None


class UTCDateTime(TypeDecorator[_dt.datetime]):
    """Aware UTC datetimes on both SQLite (which has no time zones) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        value = value.astimezone(_dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.UTC)
        return value.astimezone(_dt.UTC)


def insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]] | dict[str, Any],
                  conflict: list[str] | None = None) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect; returns rows inserted."""
    if not rows:
        return 0
    tbl = getattr(table, "__table__", table)
    postgres = is_postgres(session)
    stmt = (pg_insert if postgres else sqlite_insert)(tbl).values(rows).on_conflict_do_nothing(
        index_elements=conflict)
    if postgres:
        # SQLAlchemy 2.1 adds RETURNING to such inserts and psycopg then reports rowcount -1
        # (which reads as "inserted"): count the rows that really went in instead.
        return len(session.execute(stmt.returning(literal_column("1"))).all())
    return session.execute(stmt).rowcount or 0


def keyset_page(session: Session, stmt: Any, id_col: Any, after_id: int | None, limit: int, *,
                tuples: bool = False) -> tuple[list[Any], bool]:
    """Every staff list pages newest-first by id: the page after `after_id`, and whether more follow."""
    if after_id is not None:
        stmt = stmt.where(id_col < after_id)
    stmt = stmt.order_by(id_col.desc()).limit(limit + 1)
    rows = list(session.execute(stmt).tuples()) if tuples else list(session.scalars(stmt))
    return rows[:limit], len(rows) > limit
