"""The integration harness itself: a form posted over HTTP reaches a real SMTP server via a real worker."""

import httpx
import pytest

from tests.harness import api_server, celery_worker
from tests.helpers import newsletter_body

pytestmark = pytest.mark.integration


def test_form_to_smtp_through_worker(live_settings, smtp, tmp_path):
    worker = celery_worker(live_settings, tmp_path / "worker.log")
    api, base = api_server(live_settings, tmp_path / "api.log")
    try:
        r = httpx.post(f"{base}/api/v1/forms/newsletter", json=newsletter_body(email="live@example.org"))
        assert r.status_code == 202
        [msg] = smtp.wait_count("live@example.org", 1)
        assert msg["Subject"] == "Please confirm your subscription"
    finally:
        api.stop()
        worker.stop()
