"""The benchmark's baseline: the same JSON validated the same way, one row committed in one transaction
(PostgreSQL, or SQLite with the app's own engine settings under `bench/intake.py --sqlite`).

This is the durable-commit limit of the machine as seen through the same stack (uvicorn, Litestar,
a sync SQLAlchemy engine on psycopg in Litestar's thread pool). Not part of the service.
Run by bench/intake.py: `uvicorn --app-dir bench/baseline newsletter_app:app` with BENCH_DATABASE_URL set.
(A subfolder, so `make bench`, which runs every bench/*.py, does not run it as a benchmark.)
"""

from __future__ import annotations

import json
import os
from typing import Any

from litestar import Litestar, Response, post
from sqlalchemy import text

from crm.contacts.service import normalize_email
from crm.db import build_engine
from crm.errors import Invalid
from crm.forms.models import NewsletterForm
from crm.http import exception_handlers

INTERESTS = {"cancer-information", "treatment-and-side-effects", "clinical-trials", "caregiving",
             "tobacco-cessation", "patient-programs", "volunteering", "fundraising-events", "donations",
             "research-news", "advocacy"}
engine = build_engine(os.environ["BENCH_DATABASE_URL"])

SQLITE = engine.dialect.name == "sqlite"
DDL = """CREATE TABLE IF NOT EXISTS bench_baseline (
    id integer PRIMARY KEY, email text NOT NULL, payload text NOT NULL,
    created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP)""" if SQLITE else """CREATE TABLE IF NOT EXISTS bench_baseline (
    id bigserial PRIMARY KEY, email text NOT NULL, payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""
INSERT = text("INSERT INTO bench_baseline (email, payload) VALUES (:e, :p)" if SQLITE else
              "INSERT INTO bench_baseline (email, payload) VALUES (:e, CAST(:p AS jsonb))")


def _create_table() -> None:
    with engine.begin() as conn:
        conn.execute(text(DDL))


@post("/baseline/newsletter", status_code=202, sync_to_thread=True)
def signup(data: NewsletterForm) -> Response[dict[str, str]]:
    email = normalize_email(data.email)
    unknown = [k for k in data.interests or [] if k not in INTERESTS]
    if unknown:
        raise Invalid.field("interests", f"unknown interest {unknown!r}")
    if data.consent is not True:
        raise Invalid.field("consent", "must be true")
    with engine.begin() as conn:
        conn.execute(INSERT, {"e": email.key, "p": json.dumps(data.model_dump())})
    return Response({"status": "pending_confirmation"}, status_code=202)


def _app() -> Any:
    return Litestar(route_handlers=[signup], exception_handlers=exception_handlers, on_startup=[_create_table],
                    openapi_config=None, debug=False)


app = _app()
