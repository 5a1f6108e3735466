"""Outbox draining after a burst of form posts, on SQLite (the embedded default of `crm run`).

    .venv/bin/python bench/outbox_drain.py            # 500 posts
    .venv/bin/python bench/outbox_drain.py --posts 200

Set-up (printed with the figures): a fresh SQLite database migrated to head; N newsletter posts
through the real service function (submit_newsletter, one transaction each), which leaves N confirm
emails in the outbox; a real aiosmtpd catcher on loopback (tests/harness.py) as the SMTP server.
Baseline, measured in the same run: what one worker task per message did before batching (one
`deliver` call with its own SMTP connection per message, as `send_outbox_message` did). Figure:
`drain` (claim 50 due rows per UPDATE, send them over one connection, mark each). The outbox is
refilled between the two so both send N messages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from crm.config import load_settings  # noqa: E402
from crm.db import session_scope  # noqa: E402
from crm.forms.service import RequestMeta, submit_newsletter  # noqa: E402
from crm.mail import make_sender  # noqa: E402
from crm.migrate import upgrade  # noqa: E402
from crm.outbox import service as outbox  # noqa: E402
from crm.outbox.models import OutboxMessage  # noqa: E402
from tests.harness import SmtpCatcher  # noqa: E402


def _post(settings, posts: int, tag: str) -> list[int]:  # type: ignore[no-untyped-def]
    ids: list[int] = []
    for i in range(posts):
        with session_scope(settings) as s:
            ids += submit_newsletter(s, settings, {"email": f"{tag}{i}@example.org", "first_name": "B",
                                                   "consent": True}, RequestMeta("127.0.0.1", "bench"))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=500)
    args = parser.parse_args()
    catcher = SmtpCatcher().start()
    tmp = Path(tempfile.mkdtemp(prefix="crm-drain-"))
    settings = load_settings(env="development", var_dir=tmp / "var", database_url=f"sqlite:///{tmp}/crm.db",
                             broker_url="memory://", mail_backend="smtp", smtp_host="127.0.0.1",
                             smtp_port=catcher.port, secret_key="bench-secret", webhook_secret="bench",
                             public_base_url="http://localhost:8000")
    upgrade(settings)
    print(f"set-up: SQLite {tmp}/crm.db, {args.posts} newsletter posts, aiosmtpd on 127.0.0.1:{catcher.port}")

    ids = _post(settings, args.posts, "base")
    t0 = time.perf_counter()
    for message_id in ids:
        sender = make_sender(settings)
        try:
            outbox.deliver(settings, sender, message_id)
        finally:
            sender.close()
    base = len(ids) / (time.perf_counter() - t0)

    _post(settings, args.posts, "drain")
    t0 = time.perf_counter()
    sender = make_sender(settings)
    try:
        results = outbox.drain(settings, sender)
    finally:
        sender.close()
    sent = sum(r.outcome == "sent" for r in results)
    rate = sent / (time.perf_counter() - t0)
    with session_scope(settings) as s:
        pending = len(s.scalars(select(OutboxMessage.id).where(OutboxMessage.state != "sent")).all())
    catcher.stop()
    print(f"baseline (one deliver + one SMTP connection per message): {base:7.1f} emails/s")
    print(f"drain (batches of {outbox.DRAIN_BATCH} over one connection):       {rate:7.1f} emails/s"
          f"  ({sent} sent, {pending} not sent, {rate / base:.1f}x)")


if __name__ == "__main__":
    main()
