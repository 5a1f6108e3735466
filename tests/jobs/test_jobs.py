"""Import jobs: progress over HTTP, resuming after a crash, and the real Celery task end to end."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from crm.contacts import importer
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.jobs import service as jobs
from crm.jobs.models import Job


def _csv(n: int, start: int = 0) -> bytes:
    return ("email,first_name\n" + "".join(f"p{i}@example.org,P{i}\n" for i in range(start, start + n))).encode()


def test_unknown_job_is_404(client: Any, auth: Any) -> None:
    assert client.get("/api/v1/jobs/12345", headers=auth("viewer")).status_code == 404


def test_progress_is_committed_per_batch_and_a_rerun_resumes(settings: Any) -> None:
    import io

    with session_scope(settings) as s:
        job_id = jobs.create_job(s, importer.KIND, io.BytesIO(_csv(7)), "p.csv", "ops@example.org").id
        assert s.get(Job, job_id).total == 7
    seen: list[int] = []

    class Crash(Exception):
        pass

    def crash_after_two_batches(job: Job) -> None:
        seen.append(job.processed)
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash), session_scope(settings) as s:
        importer.run(s, job_id, progress=crash_after_two_batches, batch_size=3)
    with session_scope(settings) as s:
        job = s.get(Job, job_id)
        assert (job.state, job.processed, job.created) == ("running", 6, 6)
        assert importer.run(s, job_id).processed == 6  # a live worker may still be on it: hands off
        assert jobs.due(s) == []
        job.updated_at -= dt.timedelta(seconds=jobs.STALE_SECONDS + 1)  # that worker died long ago
        s.add(job)
        s.commit()
        assert jobs.due(s) == [job_id]  # what the periodic sweep re-enqueues
        importer.run(s, job_id, batch_size=3)  # the redelivered task picks up where the last commit left
        job = s.get(Job, job_id)
        assert (job.state, job.processed, job.created) == ("done", 7, 7)
        assert s.scalar(select(func.count()).select_from(Contact)) == 7
        assert importer.run(s, job_id).state == "done"  # and a third delivery does nothing


@pytest.mark.integration
def test_import_through_a_real_worker(live_settings: Any, tmp_path: Any, staff_tokens: dict[str, str]) -> None:
    from tests.harness import api_server, celery_worker

    worker = celery_worker(live_settings, tmp_path / "worker.log")
    api, base = api_server(live_settings, tmp_path / "api.log")
    headers = {"Authorization": f"Bearer {staff_tokens['editor']}"}
    try:
        r = httpx.post(f"{base}/api/v1/contacts/import", files={"file": ("p.csv", _csv(2500), "text/csv")},
                       headers=headers)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/api/v1/jobs/{r.json()['job_id']}", headers=headers).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.3)
        assert (job["state"], job["processed"], job["created"]) == ("done", 2500, 2500)
    finally:
        api.stop()
        worker.stop()
