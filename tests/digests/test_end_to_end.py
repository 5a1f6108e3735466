"""A digest run end to end: the beat's task on a real Celery worker, mail over real SMTP."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from crm.campaigns import digests
from crm.campaigns.models import Campaign
from crm.celery_publisher import celery_client
from crm.db import session_scope
from tests.digests.test_planning import make_item, reader
from tests.harness import celery_worker

pytestmark = pytest.mark.integration


def _stats(settings: Any, run_id: int) -> dict[str, Any]:
    with session_scope(settings) as s:
        return digests.stats(s, run_id)


def test_the_weekly_task_mails_each_reader_once_over_smtp(live_settings: Any, smtp: Any, tmp_path: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_scope(live_settings) as s:
        make_item(s, "Questions to Ask Your Doctor", ["cancer-information"], now=now)
        make_item(s, "Preguntas para su médico", ["cancer-information"], language="es", now=now)
        make_item(s, "Quit-line tips", ["tobacco-cessation"], now=now)
        for i in range(5):
            reader(s, f"reader{i}@example.org", ["cancer-information"])
        reader(s, "lector@example.org", ["cancer-information"], language="es")
        reader(s, "quiet@example.org", ["advocacy"])  # nothing new for them: no email

    worker = celery_worker(live_settings, tmp_path / "worker.log")
    try:
        celery_client(live_settings).send_task("worker.tasks.run_digests", args=("weekly",))
        smtp.wait_for(lambda ms: len(ms) >= 6, timeout=60)
        # The beat firing again in the same week plans nothing and mails nobody.
        celery_client(live_settings).send_task("worker.tasks.run_digests", args=("weekly",))
        time.sleep(3)
    finally:
        worker.stop()
    counts = Counter(str(m["To"]).lower() for m in smtp.messages)
    assert counts == Counter({f"reader{i}@example.org": 1 for i in range(5)} | {"lector@example.org": 1}), \
        worker.output()[-3000:]
    [spanish] = smtp.to("lector@example.org")
    assert "Preguntas para su médico" in spanish.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert spanish["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with session_scope(live_settings) as s:
        [run_id] = s.scalars(select(Campaign.id).where(Campaign.kind == "digest")).all()
    stats = _stats(live_settings, run_id)
    assert stats["sent"] == 6 and stats["recipients"] == 6 and stats["items"] == 6
