"""Alembic environment: the URL comes from crm.config (or the caller's Config attribute)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import crm.models  # noqa: F401 - registers every table
from crm.config import get_settings
from crm.db import build_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    url = config.attributes.get("database_url") or get_settings().database_url
    engine = build_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
