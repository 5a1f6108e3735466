"""CSV import: per-row errors with row numbers, idempotent re-import, consent and suppression respected."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from crm.contacts import importer
from crm.contacts import service as contacts
from crm.contacts.models import ConsentEvent, Contact, ContactInterest, ContactTag, Subscription
from crm.db import session_scope
from crm.jobs.models import JobChunk
from crm.staff.models import AuditEvent
from tests.factories import make_contact

CSV = (
    "Email,first_name,last_name,language,role,interests,tags,postal_code,phone,subscribe,consent,shoe_size\n"
    "ana@example.org,Ana,Ruiz,es,caregiver,caregiving;clinical-trials,walk-2026,30301,,newsletter,yes,9\n"
    "not-an-address,Bo,,en,,,,,,,,\n"
    "cy@example.org,Cy,,xx,wizard,astrology,,,,,,\n"
    "di@example.org,Di,Ho,en,,,gala-2026;walk-2026,,,newsletter,,\n"
    "ANA@example.org,,,,,caregiving,board,,,,,\n"
)


def _upload(client: Any, auth: Any, data: str, *, raw: bool = False) -> int:
    if raw:
        r = client.post("/api/v1/contacts/import", content=data.encode(), headers={**auth("editor"),
                                                                                  "content-type": "text/csv"})
    else:
        r = client.post("/api/v1/contacts/import", files={"file": ("people.csv", data.encode(), "text/csv")},
                        headers=auth("editor"))
    assert r.status_code == 202, r.text
    return r.json()["job_id"]  # type: ignore[no-any-return]


def _run(settings: Any, job_id: int) -> None:
    """What the Celery task does (worker.tasks.import_contacts), in-process."""
    with session_scope(settings) as s:
        importer.run(s, job_id, batch_size=2)


def _job(client: Any, auth: Any, job_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/jobs/{job_id}", headers=auth("viewer"))
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_import_reports_rows_and_reimport_changes_nothing(client: Any, auth: Any, settings: Any) -> None:
    job_id = _upload(client, auth, CSV)
    assert _job(client, auth, job_id)["state"] == "queued"
    _run(settings, job_id)
    job = _job(client, auth, job_id)
    # Row 5 asks for a subscription without consent: the whole row waits for a fixed file.
    assert (job["state"], job["processed"], job["created"], job["updated"]) == ("done", 5, 1, 1)
    bad = {(e["row"], e["field"]) for e in job["errors"]}
    assert bad == {(3, "email"), (4, "language"), (4, "role"), (4, "interests"), (5, "consent")}
    assert "shoe_size" in job["message"]
    with session_scope(settings) as s:
        ana = s.scalars(select(Contact).where(Contact.email_key == "ana@example.org")).one()
        assert (ana.first_name, ana.language, ana.role, ana.postal_code) == ("Ana", "es", "caregiver", "30301")
        assert contacts.interests_of(s, ana.id) == ["caregiving", "clinical-trials"]
        assert contacts.tags_of(s, ana.id) == ["board", "walk-2026"]
        assert contacts.subscription(s, ana.id, "newsletter").state == "confirmed"
        event = s.scalars(select(ConsentEvent)).one()
        assert (event.action, event.source, event.staff_email) == ("staff-import", "import", "editor@staff.example.org")
        assert s.scalar(select(func.count()).select_from(JobChunk)) == 0  # the upload is not kept
        assert s.scalars(select(AuditEvent.action)).all() == ["contacts.import"]

    def snapshot() -> tuple[Any, ...]:
        with session_scope(settings) as s:
            return tuple(s.execute(select(func.count()).select_from(t)).scalar() for t in
                         (Contact, ContactInterest, ContactTag, Subscription, ConsentEvent)) + tuple(
                s.execute(select(Contact.email_key, Contact.updated_at).order_by(Contact.id)).all())

    before = snapshot()
    again = _upload(client, auth, CSV, raw=True)
    _run(settings, again)
    job = _job(client, auth, again)
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, 2)  # Ana, seen in two batches
    assert snapshot() == before


def test_import_never_subscribes_suppressed_or_erased_people(client: Any, auth: Any, settings: Any,
                                                            session: Any) -> None:
    make_contact(session, email="gone@example.org", lists={"newsletter": "unsubscribed"})
    contacts.suppress(session, "gone@example.org", "unsubscribed")
    contacts.suppress(session, "erased@example.org", "erased")
    session.commit()
    job_id = _upload(client, auth, "email,first_name,subscribe,consent\n"
                                   "gone@example.org,Gail,newsletter,yes\n"
                                   "erased@example.org,Eve,newsletter,yes\n")
    _run(settings, job_id)
    job = _job(client, auth, job_id)
    messages = {e["row"]: e["message"] for e in job["errors"]}
    assert "suppressed" in messages[2] and "erased" in messages[3]
    with session_scope(settings) as s:
        assert s.scalars(select(Contact.email_key)).all() == ["gone@example.org"]
        assert s.scalars(select(Subscription.state)).all() == ["unsubscribed"]
        assert s.scalars(select(Contact.first_name)).all() == ["Gail"]


def test_import_without_email_header_fails_clearly(client: Any, auth: Any, settings: Any) -> None:
    job_id = _upload(client, auth, "name,phone\nAna,123\n")
    _run(settings, job_id)
    job = _job(client, auth, job_id)
    assert job["state"] == "failed" and "email" in job["message"]


def test_import_refuses_wrong_upload_shapes(client: Any, auth: Any) -> None:
    r = client.post("/api/v1/contacts/import", json={"email": "x"}, headers=auth("editor"))
    assert r.status_code == 400 and "file" in r.json()["errors"]
    r = client.post("/api/v1/contacts/import", files={"other": ("a.csv", b"email\n", "text/csv")},
                    headers=auth("editor"))
    assert r.status_code == 400
    r = client.post("/api/v1/contacts/import", content=b"", headers={**auth("editor"), "content-type": "text/csv"})
    assert r.status_code == 400


def test_import_not_utf8_fails_the_job(client: Any, auth: Any, settings: Any) -> None:
    job_id = _upload(client, auth, "email\n")
    with session_scope(settings) as s:
        s.get(JobChunk, (job_id, 0)).data = "email,first_name\nzoë@example.org,Zoë\n".encode("latin-1")
    _run(settings, job_id)
    job = _job(client, auth, job_id)
    assert job["state"] == "failed" and "UTF-8" in job["message"]


def test_cli_import_with_progress(settings: Any, tmp_path: Any, capsys: Any, monkeypatch: Any) -> None:
    import argparse

    from crm.contacts_cli import cmd_import_contacts

    path = tmp_path / "people.csv"
    path.write_text("email,first_name\n" + "".join(f"p{i}@example.org,P{i}\n" for i in range(25)))
    code = cmd_import_contacts(argparse.Namespace(file=str(path), staff="ops@example.org", show_errors=5), settings)
    assert code == 0
    assert '"created": 25' in capsys.readouterr().out
