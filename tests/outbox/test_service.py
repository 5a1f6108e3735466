"""The transactional outbox: exactly-once delivery, retries with backoff, permanent failures, over real SMTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import session_scope, utcnow
from crm.mail import MemorySender, SmtpSender
from crm.outbox import service as outbox
from crm.outbox.models import OutboxMessage
from tests.conftest import make_settings
from tests.factories import make_contact
from tests.helpers import newsletter_body


def _queue_confirm(settings: Any, address: str = "ana@example.org") -> tuple[int, int]:
    with session_scope(settings) as s:
        c = make_contact(s, email=address, lists={"newsletter": "pending"})
        assert c.id is not None
        person = {"first_name": "Ana", "last_name": "", "email": address, "language": "en", "role": None,
                  "id": c.id}
        mid = outbox.queue(s, "confirm", address, {"contact": person,
                                                   "links": {"confirm": "http://x/confirm/t",
                                                             "preferences": "http://x/preferences/t",
                                                             "unsubscribe": "http://x/unsubscribe/t"}},
                           contact_id=c.id)
        assert mid is not None
        return mid, c.id


def _row(settings: Any, mid: int) -> OutboxMessage:
    with session_scope(settings) as s:
        row = s.get(OutboxMessage, mid)
        assert row is not None
        s.expunge(row)
        return row


@pytest.fixture
def smtp_settings(settings, smtp, tmp_path):
    return make_settings(tmp_path, settings.database_url, mail_backend="smtp", smtp_host="127.0.0.1",
                         smtp_port=smtp.port, smtp_timeout=5)


def test_delivering_one_id_twice_sends_once(settings):
    mid, _ = _queue_confirm(settings)
    sender = MemorySender()
    assert outbox.deliver(settings, sender, mid).outcome == "sent"
    assert outbox.deliver(settings, sender, mid).outcome == "already-done"
    assert len(MemorySender.outbox) == 1
    row = _row(settings, mid)
    assert row.state == "sent" and row.sent_at is not None and row.attempts == 1


def test_a_row_leased_by_another_worker_is_not_sent_again(settings):
    mid, _ = _queue_confirm(settings)
    with session_scope(settings) as s:
        assert outbox._claim(s, mid, utcnow())
    assert outbox.deliver(settings, MemorySender(), mid).outcome == "busy"
    assert MemorySender.outbox == []
    # The lease runs out (the other worker died): the sweep finds it and it goes once.
    with session_scope(settings) as s:
        s.get(OutboxMessage, mid).lease_until = utcnow() - dt.timedelta(seconds=1)  # type: ignore[union-attr]
    with session_scope(settings) as s:
        assert outbox.due(s) == [mid]
    assert outbox.deliver(settings, MemorySender(), mid).outcome == "sent"
    assert len(MemorySender.outbox) == 1


def test_due_waits_out_the_grace_and_the_backoff(settings):
    mid, _ = _queue_confirm(settings)
    with session_scope(settings) as s:
        assert outbox.due(s) == []  # just queued: the after-commit task is on its way
        row = s.get(OutboxMessage, mid)
        assert row is not None
        row.created_at = utcnow() - dt.timedelta(minutes=1)
    with session_scope(settings) as s:
        assert outbox.due(s) == [mid]
        row = s.get(OutboxMessage, mid)
        assert row is not None
        row.next_attempt_at = utcnow() + dt.timedelta(minutes=1)
    with session_scope(settings) as s:
        assert outbox.due(s) == []


def test_form_post_message_is_delivered_over_smtp_with_the_right_headers(client, smtp, smtp_settings, settings):
    client.post("/api/v1/forms/newsletter", json=newsletter_body())
    with session_scope(settings) as s:
        [mid] = s.scalars(select(OutboxMessage.id))
    sender = SmtpSender(smtp_settings)
    try:
        assert outbox.deliver(smtp_settings, sender, mid).outcome == "sent"
    finally:
        sender.close()
    [msg] = smtp.messages
    assert smtp.envelopes == [("news@example.org", ["ana@example.org"])]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == _row(settings, mid).message_id
    assert msg.get_content_type() == "multipart/alternative"


def test_transient_smtp_errors_are_retried_with_backoff(smtp, smtp_settings):
    mid, contact_id = _queue_confirm(smtp_settings)
    replies = iter(["451 4.3.0 try again later", "421 4.7.0 too busy"])
    smtp.fault = lambda rcpt: next(replies, None)
    for attempt in (1, 2):
        sender = SmtpSender(smtp_settings)
        before = utcnow()
        assert outbox.deliver(smtp_settings, sender, mid).outcome == "retry"
        sender.close()
        row = _row(smtp_settings, mid)
        assert (row.state, row.attempts) == ("pending", attempt)
        assert row.last_error and row.last_error.startswith(("451", "421"))
        wait = (row.next_attempt_at - before).total_seconds()
        ceiling = 30 * 2 ** (attempt - 1)
        assert -1 <= wait <= ceiling + 1  # full jitter (crm.backoff)
    sender = SmtpSender(smtp_settings)
    assert outbox.deliver(smtp_settings, sender, mid).outcome == "sent"
    sender.close()
    assert len(smtp.to("ana@example.org")) == 1
    with session_scope(smtp_settings) as s:
        assert s.get(Contact, contact_id).status == "active"  # type: ignore[union-attr]


def test_backoff_grows_and_is_capped():
    # Full jitter: anywhere from at once to the doubling ceiling.
    assert all(0 <= outbox.backoff(1).total_seconds() <= 30 for _ in range(20))
    assert all(0 <= outbox.backoff(5).total_seconds() <= 480 for _ in range(20))
    assert all(outbox.backoff(40).total_seconds() <= 3600 for _ in range(20))


def test_giving_up_after_max_attempts(smtp, smtp_settings):
    mid, _ = _queue_confirm(smtp_settings)
    smtp.fault = lambda rcpt: "451 4.3.0 try again later"
    with session_scope(smtp_settings) as s:
        s.get(OutboxMessage, mid).attempts = outbox.MAX_ATTEMPTS - 1  # type: ignore[union-attr]
    sender = SmtpSender(smtp_settings)
    assert outbox.deliver(smtp_settings, sender, mid).outcome == "failed"
    sender.close()
    assert _row(smtp_settings, mid).state == "failed"


def test_permanent_recipient_error_is_recorded_and_suppresses(smtp, smtp_settings):
    mid, contact_id = _queue_confirm(smtp_settings)
    smtp.fault = lambda rcpt: "550 5.1.1 no such user here"
    sender = SmtpSender(smtp_settings)
    assert outbox.deliver(smtp_settings, sender, mid).outcome == "failed"
    sender.close()
    row = _row(smtp_settings, mid)
    assert row.state == "failed" and row.last_error and row.last_error.startswith("550")
    with session_scope(smtp_settings) as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None and contact.email_key is not None
        assert contact.status == "bounced"
        assert contacts.suppression_reason(s, contact.email_key) == "bounced"
    assert smtp.messages == []


def test_permanent_policy_refusal_is_recorded_but_does_not_suppress(smtp, smtp_settings):
    mid, contact_id = _queue_confirm(smtp_settings)
    smtp.fault = lambda rcpt: "554 5.7.1 message refused by policy"
    sender = SmtpSender(smtp_settings)
    assert outbox.deliver(smtp_settings, sender, mid).outcome == "failed"
    sender.close()
    assert _row(smtp_settings, mid).state == "failed"
    with session_scope(smtp_settings) as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None and contact.email_key is not None
        assert contact.status == "active"
        assert contacts.suppression_reason(s, contact.email_key) is None


def test_smtp_server_down_is_transient(smtp_settings, tmp_path):
    from tests.harness import free_port

    down = make_settings(tmp_path, smtp_settings.database_url, mail_backend="smtp", smtp_host="127.0.0.1",
                         smtp_port=free_port(), smtp_timeout=2)
    mid, _ = _queue_confirm(down)
    sender = SmtpSender(down)
    assert outbox.deliver(down, sender, mid).outcome == "retry"
    sender.close()
    assert _row(down, mid).state == "pending"


def test_file_backend_writes_one_eml_per_message(settings, tmp_path):
    from crm.mail import FileSender

    mid, _ = _queue_confirm(settings)
    sender = FileSender(tmp_path / "outbox")
    outbox.deliver(settings, sender, mid)
    outbox.deliver(settings, sender, mid)
    [eml] = list((tmp_path / "outbox").glob("*.eml"))
    assert b"Auto-Submitted: auto-generated" in eml.read_bytes()


def test_a_message_that_cannot_render_is_not_left_leased(settings):
    with session_scope(settings) as s:
        mid = outbox.queue(s, "confirm", "ana@example.org", {"contact": {}})
    assert mid is not None
    assert outbox.deliver(settings, MemorySender(), mid).outcome == "retry"
    row = _row(settings, mid)
    assert row.state == "pending" and row.lease_until is None
    assert row.last_error and row.last_error.startswith("cannot render confirm")
    assert MemorySender.outbox == []
