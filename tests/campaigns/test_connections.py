"""CRM_SMTP_CONNECTIONS: a sender holds N connections and sends in rounds; kill -9 costs at most N resends.

Real parts only: a Celery worker in its own process group on the real broker, the aiosmtpd catcher of
tests/harness.py, the test's database (SQLite or PostgreSQL).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.campaigns.test_integration import (
    bulk_people,
    chaos_settings,
    launch,
    per_address,
    send_with_one_worker,
    wait_done,
)
from tests.harness import celery_worker

pytestmark = pytest.mark.integration

CONNECTIONS = 3


def test_one_sender_uses_its_connections_in_rounds(live_settings, smtp, tmp_path):
    settings = chaos_settings(live_settings, tmp_path, smtp_connections=CONNECTIONS, send_rate=2000.0)
    emails = bulk_people(settings, 60, "rounds")
    counts = send_with_one_worker(settings, tmp_path)
    assert counts == {"sent": 60}
    assert sorted(per_address(smtp)) == sorted(emails)
    with smtp.lock:
        used = Counter(smtp.peers)
    # In rounds: every connection carries its share (a later send task, if any, opens its own).
    assert len(used) >= CONNECTIONS and max(used.values()) <= 60 // CONNECTIONS + 1, used


@pytest.mark.parametrize("connections", [1, CONNECTIONS])
def test_kill_9_mid_send_resends_at_most_one_message_per_connection(live_settings, smtp, tmp_path, connections):
    n = 900
    settings = chaos_settings(live_settings, tmp_path, smtp_connections=connections, send_rate=300.0,
                              lease_seconds=10)
    emails = bulk_people(settings, n, f"kill{connections}x")
    kills = 3
    worker = celery_worker(settings, tmp_path / "w0.log", concurrency=1, beat=True)
    try:
        cid = launch(settings)
        for k in range(kills):
            smtp.wait_for(lambda ms, k=k: len(ms) >= (k + 1) * n // (kills + 1), timeout=90)
            worker.kill9()  # mid-send: messages are going out on every connection
            worker = celery_worker(settings, tmp_path / f"w{k + 1}.log", concurrency=1, beat=True)
        counts = wait_done(settings, cid, 180, [worker])
    finally:
        worker.stop()
    got = per_address(smtp)
    assert [e for e in emails if got[e] == 0] == []
    duplicates = sum(c - 1 for c in got.values() if c > 1)
    print(f"{connections} connections, {kills} kills: {duplicates} duplicates")  # shown with -s
    assert duplicates <= kills * connections, f"{duplicates} duplicates after {kills} kills, {connections} each"
    assert max(got.values()) <= 1 + kills
    assert counts == {"sent": n}
