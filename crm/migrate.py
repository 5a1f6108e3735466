"""Run Alembic programmatically (for `crm db upgrade`, `crm run` and the tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from crm.config import PROJECT_ROOT, Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = settings.database_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)
