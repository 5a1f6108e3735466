"""The production shape end to end: uvicorn API -> PostgreSQL/SQLite -> Redis -> Celery worker -> SMTP.

Each form is posted over HTTP and the exact emails are read off a real aiosmtpd server; the confirm
link is followed over HTTP. A post accepted while the broker is unreachable is delivered once a
worker (with its beat sweep) comes up on the real broker.
"""

from __future__ import annotations

import re
import time
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from crm.tokens import read_token
from tests.conftest import make_settings
from tests.harness import api_server, celery_worker, free_port
from tests.helpers import donation_body, link_path, newsletter_body, text_of, volunteer_body

pytestmark = pytest.mark.integration

MESSAGE_ID = re.compile(r"^<[0-9a-f]{32}@example\.org>$")


@pytest.fixture
def stack(live_settings, tmp_path):
    worker = celery_worker(live_settings, tmp_path / "worker.log", beat=True)
    api, base = api_server(live_settings, tmp_path / "api.log")
    yield base
    api.stop()
    worker.stop()


def assert_transactional(msg: EmailMessage, to: str, subject: str) -> None:
    assert str(msg["To"]) == to
    assert msg["Subject"] == subject
    assert msg["From"] == "Cancer Helpline <news@example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert MESSAGE_ID.match(str(msg["Message-ID"])), msg["Message-ID"]
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(msg).strip()


def follow(base: str, msg: EmailMessage, kind: str, **kw: Any) -> httpx.Response:
    return httpx.get(base + link_path(msg, kind), timeout=10, **kw)


def test_newsletter_confirm_and_welcome_over_http(stack, smtp, live_settings):
    base = stack
    r = httpx.post(f"{base}/api/v1/forms/newsletter", json=newsletter_body(email="Nia@Example.org"))
    assert (r.status_code, r.json()) == (202, {"status": "pending_confirmation"})
    [confirm] = smtp.wait_count("Nia@example.org", 1)
    assert_transactional(confirm, "Nia@example.org", "Please confirm your subscription")
    assert smtp.envelopes[0][1] == ["Nia@example.org"]
    assert f"{live_settings.public_base_url}/confirm/" in text_of(confirm)

    page = follow(base, confirm, "confirm")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    welcome = smtp.wait_count("Nia@example.org", 2)[1]
    assert_transactional(welcome, "Nia@example.org", "Welcome: you are subscribed")
    assert welcome["Message-ID"] != confirm["Message-ID"]
    secret = live_settings.secret_key
    for kind in ("preferences", "unsubscribe"):
        token = link_path(welcome, kind).split("/")[-1]
        assert read_token(secret, token, kind).contact_id > 0  # type: ignore[arg-type]
        r = follow(base, welcome, kind)  # a GET of either page changes nothing
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]

    # Following the confirm link again changes nothing and sends nothing.
    assert follow(base, confirm, "confirm").status_code == 200
    time.sleep(1.5)
    assert len(smtp.to("Nia@example.org")) == 2


def test_volunteer_form_emails(stack, smtp, live_settings):
    r = httpx.post(f"{stack}/api/v1/forms/volunteer-interest", json=volunteer_body(newsletter=True))
    assert (r.status_code, r.json()) == (202, {"status": "received"})
    mine = smtp.wait_count("vic@example.org", 2)
    [notice] = smtp.wait_count(live_settings.notify_volunteers, 1)
    assert sorted(m["Subject"] for m in mine) == ["Please confirm your subscription",
                                                  "Thank you for offering to volunteer"]
    welcome = next(m for m in mine if m["Subject"] == "Thank you for offering to volunteer")
    assert_transactional(welcome, "vic@example.org", "Thank you for offering to volunteer")
    for kind in ("preferences", "unsubscribe"):
        assert follow(stack, welcome, kind).status_code == 200
    assert_transactional(notice, live_settings.notify_volunteers,
                         "New volunteer interest: Vic Ray (Driving patients to treatment)")
    assert "vic@example.org" in text_of(notice)
    assert len({m["Message-ID"] for m in [*mine, notice]}) == 3


def test_donation_form_emails(stack, smtp, live_settings):
    r = httpx.post(f"{stack}/api/v1/forms/donation-inquiry", json=donation_body(
        inquiry_type="tribute-memorial", in_honor_of="my mother", amount_range="$100-$250"))
    assert (r.status_code, r.json()) == (202, {"status": "received"})
    [ack] = smtp.wait_count("di@example.org", 1)
    [notice] = smtp.wait_count(live_settings.notify_donations, 1)
    assert_transactional(ack, "di@example.org", "We received your question about giving")
    assert re.fullmatch(r"New donation inquiry #\d+: A gift in honor or memory of someone", notice["Subject"])
    assert_transactional(notice, live_settings.notify_donations, notice["Subject"])
    assert "$100" not in text_of(notice)  # staff notices never carry amounts
    time.sleep(1.0)
    assert len(smtp.to("di@example.org")) == 1  # a donation subscribes to nothing: no confirm email


def test_post_while_the_broker_is_unreachable_is_delivered_later(live_settings, smtp, tmp_path):
    # The API's broker is a closed port; the database and everything else are real.
    down = make_settings(tmp_path, live_settings.database_url, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                         redis_url=live_settings.redis_url, mail_backend="smtp", smtp_host="127.0.0.1",
                         smtp_port=smtp.port, instance=live_settings.instance, outbox_sweep_seconds=2.0)
    api, base = api_server(down, tmp_path / "api-down.log")
    try:
        started = time.perf_counter()
        r = httpx.post(f"{base}/api/v1/forms/newsletter", json=newsletter_body(email="late@example.org"),
                       timeout=10)
        elapsed = time.perf_counter() - started
        assert r.status_code == 202
        assert elapsed < 2.0, f"the answer waited {elapsed:.1f}s for a dead broker"
        time.sleep(2)
        assert smtp.to("late@example.org") == []
    finally:
        api.stop()
    worker = celery_worker(live_settings, tmp_path / "worker.log", beat=True)
    try:
        [msg] = smtp.wait_count("late@example.org", 1, timeout=45)
        assert msg["Subject"] == "Please confirm your subscription"
        time.sleep(3)  # further sweeps must not send it again
        assert len(smtp.to("late@example.org")) == 1
    finally:
        worker.stop()
