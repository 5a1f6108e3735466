"""With a real Celery worker and beat on Redis: crash safety and isolation of slow endpoints."""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar.testing import TestClient

from crm.app import create_app
from crm.db import session_scope
from crm.webhooks import service
from tests.harness import celery_worker
from tests.helpers import newsletter_body

pytestmark = pytest.mark.integration
FAST = {"CRM_WEBHOOK_DISPATCH_SECONDS": "0.5", "CRM_WEBHOOK_LEASE_SECONDS": "20"}


def _endpoint(settings: Any, receiver: Any, events: list[str] | None = None) -> int:
    with session_scope(settings) as s:
        ep, receiver.secret = service.create(s, settings, {"url": receiver.url, "events": events or ["*"]})
        return ep.id  # type: ignore[return-value]


def test_a_30s_endpoint_delays_neither_another_endpoint_nor_the_confirm_email(live_settings, smtp, receivers,
                                                                              tmp_path):
    slow = receivers(delay=30)
    fast = receivers()
    _endpoint(live_settings, slow)
    _endpoint(live_settings, fast)
    worker = celery_worker(live_settings, tmp_path / "worker.log", beat=True, **FAST)
    try:
        with TestClient(app=create_app(live_settings), base_url="http://testserver.local") as client:
            for i in range(3):
                assert client.post("/api/v1/forms/newsletter",
                                   json=newsletter_body(email=f"iso{i}@example.org")).status_code == 202
        t0 = time.monotonic()
        fast.wait_for(6, timeout=20)
        for i in range(3):
            smtp.wait_count(f"iso{i}@example.org", 1, timeout=20)
        assert time.monotonic() - t0 < 15, "a slow endpoint held up the others"
        assert not slow.seen and slow.requests >= 1  # it is being tried, and still sleeping
        assert fast.bad_signatures == 0 and fast.duplicates == 0
    finally:
        worker.kill9()


def test_worker_killed_mid_delivery_loses_nothing(live_settings, receivers, tmp_path):
    r = receivers(delay=3)
    _endpoint(live_settings, r)
    with TestClient(app=create_app(live_settings), base_url="http://testserver.local") as client:
        assert client.post("/api/v1/forms/newsletter", json=newsletter_body(email="crash@example.org")).status_code == 202
    first = celery_worker(live_settings, tmp_path / "w1.log", beat=True, **FAST)
    deadline = time.monotonic() + 30
    while r.requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.requests == 1
    first.kill9()  # mid-POST: the worker never learns the answer
    second = celery_worker(live_settings, tmp_path / "w2.log", beat=True, **FAST)
    try:
        r.wait_for(2, timeout=60)
    finally:
        second.kill9()
    assert r.types() == ["contact.created", "form.submitted"]
    assert r.bad_signatures == 0 and r.duplicates <= 1  # at most the one in flight came twice, same webhook-id
