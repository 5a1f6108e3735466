"""Thin tasks: take ids, call one crm service, return a summary."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from crm.config import Settings
from crm.db import session_scope
from crm.mail import make_sender
from crm.outbox import service as outbox

log = logging.getLogger(__name__)


def _settings() -> Settings:
    from celery import current_app

    return current_app.conf.crm_settings  # type: ignore[no-any-return]


@shared_task(name="worker.tasks.send_outbox_message", acks_late=True)
def send_outbox_message(message_id: int) -> str:
    settings = _settings()
    sender = make_sender(settings)
    try:
        return outbox.deliver(settings, sender, message_id).outcome
    finally:
        sender.close()


@shared_task(name="worker.tasks.sweep_outbox", acks_late=True)
def sweep_outbox() -> dict[str, Any]:
    """Send what the broker never delivered (it was down, or a worker died mid-lease)."""
    settings = _settings()
    with session_scope(settings) as session:
        ids = outbox.due(session)
    outcomes: dict[str, int] = {}
    sender = make_sender(settings)
    try:
        for message_id in ids:
            outcome = outbox.deliver(settings, sender, message_id).outcome
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        sender.close()
    return {"due": len(ids), **outcomes}


@shared_task(name="worker.tasks.run_digests", acks_late=True)
def run_digests(frequency: str) -> dict[str, Any]:
    # Filled in by the digests issue.
    return {"frequency": frequency, "status": "not-implemented"}


@worker_ready.connect
def _sweep_on_start(sender: Any = None, **_: Any) -> None:
    """A worker coming up sends whatever was accepted while no worker (or broker) was there."""
    try:
        sweep_outbox.delay()
    except Exception as exc:  # noqa: BLE001
        log.warning("initial sweep not queued: %s", exc)
