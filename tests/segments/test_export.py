"""CSV export: streamed, formula-safe, audited, filtered by a saved segment; and the round trip back in."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select

from crm.contacts import importer
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.staff.models import AuditEvent
from tests.factories import make_contact


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_neutralises_formulas(client: Any, auth: Any, session: Any, settings: Any) -> None:
    make_contact(session, email="evil@example.org", first_name="=HYPERLINK(\"http://x\")", last_name="+1+1",
                 phone="-2", postal_code="@SUM(A1)", tags=["\tcmd", "\rx"])
    make_contact(session, email="plain@example.org", first_name="Ana", interests=["caregiving"],
                 lists={"newsletter": "confirmed"})
    session.commit()
    r = client.get("/api/v1/contacts/export.csv", headers=auth("editor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = {row["email"]: row for row in _rows(r.text)}
    evil = rows["evil@example.org"]
    assert evil["first_name"] == "'=HYPERLINK(\"http://x\")"
    assert (evil["last_name"], evil["phone"], evil["postal_code"]) == ("'+1+1", "'-2", "'@SUM(A1)")
    assert evil["tags"].startswith("'")
    assert rows["plain@example.org"]["interests"] == "caregiving"
    assert rows["plain@example.org"]["newsletter"] == "confirmed"
    with session_scope(settings) as s:
        event = s.scalars(select(AuditEvent)).one()
        assert (event.action, event.rows, event.staff_email) == ("contacts.export_csv", 2, "editor@staff.example.org")


def test_export_streams_many_batches_and_skips_erased(client: Any, auth: Any, session: Any) -> None:
    from crm.segments import export

    for i in range(export.BATCH + 5):
        session.add(Contact(email=f"p{i}@example.org", email_key=f"p{i}@example.org"))
    session.add(Contact(email=None, email_key=None, status="erased"))
    session.commit()
    r = client.get("/api/v1/contacts/export.csv", headers=auth("admin"))
    assert len(_rows(r.text)) == export.BATCH + 5


def test_export_by_segment(client: Any, auth: Any, session: Any) -> None:
    make_contact(session, email="es@example.org", language="es")
    make_contact(session, email="en@example.org", language="en")
    session.commit()
    seg = client.post("/api/v1/segments", json={"name": "Spanish", "rules": {"language": "es"}},
                      headers=auth("editor"))
    assert seg.status_code == 201, seg.text
    r = client.get(f"/api/v1/contacts/export.csv?segment_id={seg.json()['id']}", headers=auth("editor"))
    assert [row["email"] for row in _rows(r.text)] == ["es@example.org"]
    assert client.get("/api/v1/contacts/export.csv?segment_id=999", headers=auth("editor")).status_code == 404


def test_round_trip_export_erase_import(client: Any, auth: Any, session: Any, settings: Any) -> None:
    """What goes out comes back in unchanged; an erased person does not come back at all."""
    make_contact(session, email="ana@example.org", first_name="Ana", role="caregiver",
                 interests=["caregiving", "clinical-trials"], tags=["walk-2026"])
    gone = make_contact(session, email="bo@example.org", first_name="Bo")
    session.commit()
    exported = client.get("/api/v1/contacts/export.csv", headers=auth("editor")).text
    assert client.delete(f"/api/v1/contacts/{gone.id}", headers=auth("editor")).status_code == 204
    job = client.post("/api/v1/contacts/import", files={"file": ("back.csv", exported.encode(), "text/csv")},
                      headers=auth("editor")).json()["job_id"]
    with session_scope(settings) as s:
        importer.run(s, job)
    result = client.get(f"/api/v1/jobs/{job}", headers=auth("editor")).json()
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 0, 1)
    assert [e["row"] for e in result["errors"]] == [3]  # bo (exported second): erased at the person's request
    with session_scope(settings) as s:
        assert s.scalars(select(Contact.email_key).where(Contact.status == "active")).all() == ["ana@example.org"]
