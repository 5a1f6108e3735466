"""SSRF: internal addresses refused in production, at creation and at each connection."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from crm.app import create_app
from crm.config import load_settings
from crm.db import session_scope
from crm.errors import Invalid
from crm.webhooks import dispatcher, safety
from crm.webhooks.models import WebhookEndpoint

INTERNAL = ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.1.2.3/", "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://224.0.0.1/", "http://0.0.0.0/",
            "http://[::ffff:127.0.0.1]/"]


@pytest.fixture
def production(settings):
    return load_settings(**{**settings.model_dump(), "env": "production"})


@pytest.mark.parametrize("url", INTERNAL)
def test_production_refuses_internal_addresses_at_creation(production, auth, url):
    with TestClient(app=create_app(production), base_url="http://testserver.local") as client:
        resp = client.post("/api/v1/webhooks/endpoints", headers=auth(), json={"url": url, "events": ["*"]})
    assert resp.status_code == 400 and "url" in resp.json()["errors"]


def test_development_allows_loopback_but_never_metadata(settings):
    assert safety.check_url("http://127.0.0.1:9/x", False).ip == "127.0.0.1"
    with pytest.raises(Invalid):
        safety.check_url("http://169.254.169.254/", False)


def test_checked_again_at_each_connection(production, receivers):
    """An endpoint stored while its name was public, that now resolves to loopback, is not contacted."""
    r = receivers()
    with session_scope(production) as s:
        ep = WebhookEndpoint(url=r.url, events=["*"], secret="whsec_" + "A" * 32)
        s.add(ep)
        s.flush()
        from crm.webhooks import service

        d = service.send_test(s, ep.id)  # type: ignore[arg-type]
    dispatcher.run_until_idle(production, dispatcher.Dispatcher(threads=2))
    assert r.requests == 0
    with session_scope(production) as s:
        rows, _ = service.deliveries(s, ep.id, None, 10)  # type: ignore[arg-type]
    assert rows[0]["id"] == d.id and "refused" in rows[0]["attempts"][0]["error"]
