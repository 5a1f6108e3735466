"""Test fixtures: explicit settings, one migrated database per session, a clean slate per test.

The same suite runs on SQLite (default) and on PostgreSQL when CRM_TEST_DATABASE_URL is
set. When CI=true, a missing PostgreSQL or Redis is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from crm import queue
from crm.config import Settings, load_settings
from crm.db import engine_for
from crm.mail import MemorySender
from crm.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("CRM_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL")
KEEP_TABLES = {"interest", "app_secret", "alembic_version"}


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI: a gap must never hide behind a skip there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def _pg_server_url(url: str) -> Any:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PG_URL:
        path = tmp_path_factory.mktemp("db") / "crm.db"
        yield f"sqlite:///{path}"
        return
    base = _pg_server_url(PG_URL)
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"CRM_TEST_DATABASE_URL is set but PostgreSQL is not reachable: {exc}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_settings(tmp: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "var_dir": tmp / "var",
        "database_url": database_url,
        "broker_url": "memory://",
        "mail_backend": "memory",
        "outbox_dir": tmp / "outbox",
        "secret_key": "test-secret-key-please-change",
        "webhook_secret": "test-webhook-secret",
        "public_base_url": "http://testserver.local",
        "form_rate_limit": 1000,
        # A real-looking address: a production start refuses the placeholder (SPEC 2, issue 17).
        "org_postal_address": "1 Care Way, Springfield, ST 00001",
        "instance": f"t{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def migrated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Alembic to head once per session: the tests run on the real migrations, not create_all."""
    import crm.models  # noqa: F401

    upgrade(make_settings(tmp_path_factory.mktemp("migrate"), database_url))
    return database_url


def _clean(url: str) -> None:
    engine = engine_for(url)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE's new files for every table cost
    # PostgreSQL about 100 ms a test where DELETE takes 20.
    with engine.begin() as conn:
        for t in tables:
            conn.execute(text(f'DELETE FROM "{t}"'))
        if engine.dialect.name == "postgresql":
            conn.execute(text(_RESTART_OWNED_SEQUENCES), {"tables": tables})
        elif _has_sqlite_sequence(conn):
            conn.execute(text("DELETE FROM sqlite_sequence"))


# Ids start at 1 again in every table that was emptied (the kept tables' sequences are left alone).
_RESTART_OWNED_SEQUENCES = """
SELECT setval(s.oid::regclass, 1, false)
FROM pg_class s
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
WHERE s.relkind = 'S' AND t.relname = ANY(:tables)
"""


def _has_sqlite_sequence(conn: Any) -> bool:
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first() is not None


@pytest.fixture
def published() -> Iterator[queue.MemoryPublisher]:
    """What this test's commits would have sent to the broker (installed for the test's duration)."""
    publisher = queue.MemoryPublisher()
    previous = queue.install(publisher)
    yield publisher
    queue.install(previous)


@pytest.fixture
def settings(migrated: str, tmp_path: Path, published: queue.MemoryPublisher) -> Iterator[Settings]:
    _clean(migrated)
    MemorySender.outbox.clear()
    yield make_settings(tmp_path, migrated)
    MemorySender.outbox.clear()


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with Session(engine_for(settings.database_url), expire_on_commit=False) as s:
        yield s
        s.rollback()


@pytest.fixture
def app(settings: Settings, published: queue.MemoryPublisher) -> Any:
    """One Litestar app per process for each build-time configuration, given this test's settings.

    Building the app (routes, signatures, schemas) costs 0.2-0.9 s, most of a route test's time.
    What create_app reads only while building is the cache key; `configure` gives the built app
    this test's settings, publisher, rate-limit counters and signup group.
    """
    from crm.app import configure, create_app

    key = (settings.form_rate_limit, tuple(settings.cors_origins))
    built = _APPS.get(key)
    if built is None:
        built = _APPS[key] = create_app(settings, publisher=published)
        return built
    return configure(built, settings, published)


_APPS: dict[tuple[Any, ...], Any] = {}


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from litestar.testing import TestClient

    with TestClient(app=app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def staff_tokens(settings: Settings) -> dict[str, str]:
    """One staff member per role: {"admin": token, "editor": token, "viewer": token}."""
    from crm.db import session_scope
    from crm.staff.service import create_staff

    tokens = {}
    with session_scope(settings) as s:
        for role in ("admin", "editor", "viewer"):
            _, tokens[role] = create_staff(s, f"{role}@staff.example.org", role)
    return tokens


@pytest.fixture
def auth(staff_tokens: dict[str, str]) -> Any:
    """auth("editor") -> the headers of an editor."""
    return lambda role="admin": {"Authorization": f"Bearer {staff_tokens[role]}"}


@pytest.fixture
def sent(settings: Settings) -> Any:
    """Deliver every pending outbox message with the MemorySender and return what was sent."""
    from tests.helpers import drain_outbox

    return lambda: drain_outbox(settings)


@pytest.fixture(scope="session")
def redis_url() -> str:
    need(bool(REDIS_URL), "CRM_TEST_REDIS_URL is not set (integration tests need Redis)")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"CRM_TEST_REDIS_URL is set but Redis is not reachable: {exc}")
    return _own_redis_database(REDIS_URL)  # type: ignore[arg-type]


def _own_redis_database(url: str) -> str:
    """Under pytest-xdist, each worker gets its own Redis database (1, 2, ...) and flushes it first:
    its Celery workers then never take another test process's tasks, nor its keys."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    own = make_url(url).set(database=str(1 + int(worker.removeprefix("gw")))).render_as_string(hide_password=False)
    redis.Redis.from_url(own).flushdb()
    return own


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    need(Path(path).exists(), "Debian's chromium is not installed")
    return path


@pytest.fixture
def smtp() -> Iterator[Any]:
    """A real aiosmtpd server on loopback; `smtp.fault = fn(rcpt) -> reply|None` injects failures."""
    from tests.harness import SmtpCatcher

    catcher = SmtpCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def live_settings(settings: Settings, redis_url: str, smtp: Any, tmp_path: Path) -> Iterator[Settings]:
    """Settings for the production shape: this test's database, Redis broker, SMTP to the catcher.

    Commits made in the test process wake the real workers through the real broker.
    """
    from crm.celery_publisher import CeleryPublisher

    live = make_settings(tmp_path, settings.database_url, broker_url=redis_url, redis_url=redis_url,
                         mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=smtp.port,
                         outbox_sweep_seconds=2.0)
    previous = queue.install(CeleryPublisher(live))
    yield live
    queue.install(previous)
