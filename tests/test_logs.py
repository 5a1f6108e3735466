"""Logs: link tokens never reach the access log, every 500 leaves a traceback, named previews are audited."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy import select

from crm.db import session_scope
from crm.errors import NotFound
from crm.http import exception_handlers
from crm.links import url_for
from crm.logredact import TokenRedactingFilter, redact
from crm.staff.models import AuditEvent
from tests.factories import make_contact
from tests.harness import Process, env_for, free_port, wait_http

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # uvicorn.protocols.http: the access logger's message


def access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, ACCESS_FORMAT,
                             ("127.0.0.1:5000", "GET", path, "1.1", 200), None)


def test_every_token_route_is_redacted_in_an_access_line():
    token = "eyJjIjoxMn0.abc-DEF_123"
    for prefix in ("/confirm/", "/preferences/", "/unsubscribe/", "/respond/", "/track/open/", "/track/click/",
                   "/api/v1/preferences/", "/api/v1/volunteer-portal/", "/volunteer/", "/t/", "/r/"):
        record = access_record(f"{prefix}{token}?x=1")
        assert TokenRedactingFilter().filter(record)
        line = record.getMessage()
        assert token not in line and f"{prefix}<token>?x=1" in line, line
    assert redact("/links/resend?token=secret123&a=b") == "/links/resend?token=<token>&a=b"
    assert redact("/api/v1/contacts/12") == "/api/v1/contacts/12"  # staff paths keep their ids


def test_crm_api_never_writes_an_unsubscribe_token_to_its_log(settings, tmp_path: Path):
    with session_scope(settings) as s:
        contact_id = make_contact(s, email="log@example.org", lists={"newsletter": "confirmed"}).id
    assert contact_id is not None
    link = url_for(settings, contact_id, "unsubscribe")
    token = link.rsplit("/", 1)[1]
    port = free_port()
    log = tmp_path / "api.log"
    proc = Process([sys.executable, "-m", "crm.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                   env_for(settings), log).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", proc)
        assert httpx.get(f"{base}/unsubscribe/{token}", timeout=10).status_code == 200
        assert httpx.get(f"{base}/preferences/{token}", timeout=10).status_code in (400, 410)
    finally:
        proc.stop()
    out = proc.output()
    assert '"GET /unsubscribe/<token> HTTP/1.1" 200' in out, out[-2000:]
    assert token not in out


def _app() -> Litestar:
    @get("/boom/{token:str}", sync_to_thread=False)
    def boom(token: str) -> None:
        raise RuntimeError("database password is hunter2")

    @get("/missing", sync_to_thread=False)
    def missing() -> None:
        raise NotFound("no such thing")

    return Litestar([boom, missing], exception_handlers=exception_handlers, debug=False)


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


def test_a_500_is_logged_with_its_traceback_and_answers_without_internals():
    kept = Kept()
    logger = logging.getLogger("crm.http")
    with TestClient(_app()) as client:
        logger.addHandler(kept)  # after startup: Litestar configures logging when the app starts
        try:
            r = client.get("/boom/abc")
            assert client.get("/missing").status_code == 404  # handled errors keep their own answers
            assert client.get("/nowhere").status_code == 404
        finally:
            logger.removeHandler(kept)
    assert r.status_code == 500
    assert r.json() == {"status_code": 500, "detail": "internal server error"}
    assert "hunter2" not in r.text
    [line] = kept.lines
    assert "unhandled error on GET /boom/abc" in line
    assert "Traceback" in line and "RuntimeError: database password is hunter2" in line


def test_a_template_preview_of_a_named_contact_is_audited(client, auth, settings):
    with session_scope(settings) as s:
        contact_id = make_contact(s, email="seen@example.org", first_name="Seen").id
    assert client.post("/api/v1/templates/confirm/preview", json={}, headers=auth("viewer")).status_code == 200
    r = client.post("/api/v1/templates/confirm/preview", json={"contact_id": contact_id}, headers=auth("viewer"))
    assert r.status_code == 200, r.text
    with session_scope(settings) as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "template.preview")))
        assert [(e.staff_email, e.target) for e in events] == [("viewer@staff.example.org", f"contact:{contact_id}")]
