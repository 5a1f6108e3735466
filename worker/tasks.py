"""Thin tasks: take ids, call one crm service, return a summary."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from crm.campaigns import digests as _digests  # noqa: F401 - registers the digest items' topics
from crm.config import Settings
from crm.db import session_scope
from crm.mail import make_sender
from crm.outbox import service as outbox
from crm.volunteers import opportunities as _opportunities  # noqa: F401 - registers the invitations' links

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
    """Plan the digests due now; the pipeline's send tasks are queued when this commits."""
    from crm.campaigns import digests

    settings = _settings()
    with session_scope(settings) as session:
        run = digests.plan_run(session, settings, frequency, actor="beat")
    return run.as_dict()


@shared_task(name="worker.tasks.donation_overdue_summary", acks_late=True)
def donation_overdue_summary() -> dict[str, Any]:
    """Daily: tell donor services what waits too long (at most one email a day, by its dedupe key)."""
    from crm.donations import service as donations
    from crm.queue import enqueue_outbox

    settings = _settings()
    with session_scope(settings) as session:
        message_id = donations.queue_overdue_summary(session, settings)
    enqueue_outbox(settings, [message_id] if message_id else [])
    return {"queued": message_id}


@shared_task(name="worker.tasks.sweep_volunteer_shifts", acks_late=True)
def sweep_volunteer_shifts() -> dict[str, Any]:
    """Offers not taken in time pass to the next in line; reminders due go out (each once)."""
    from crm.queue import enqueue_outbox
    from crm.volunteers import sweeps

    settings = _settings()
    with session_scope(settings) as session:
        summary, ids = sweeps.shifts_sweep(session, settings)
    enqueue_outbox(settings, ids)
    return summary


@shared_task(name="worker.tasks.warn_expiring_qualifications", acks_late=True)
def warn_expiring_qualifications() -> dict[str, Any]:
    from crm.queue import enqueue_outbox
    from crm.volunteers import sweeps

    settings = _settings()
    with session_scope(settings) as session:
        summary, ids = sweeps.qualification_warnings(session, settings)
    enqueue_outbox(settings, ids)
    return summary


@shared_task(name="worker.tasks.import_contacts", acks_late=True)
def import_contacts(job_id: int) -> dict[str, Any]:
    """A CSV import job; resumes after the last committed batch if a worker died mid-file."""
    from crm.contacts import importer
    from crm.jobs.service import job_dict

    with session_scope(_settings()) as session:
        job = importer.run(session, job_id)
        summary = job_dict(job)
    return {k: summary[k] for k in ("id", "state", "processed", "created", "updated", "error_count")}


@shared_task(name="worker.tasks.sweep_jobs", acks_late=True)
def sweep_jobs() -> dict[str, Any]:
    """Re-enqueue import jobs whose wake-up call was lost (broker down) or whose worker died."""
    from crm.jobs.service import due
    from crm.queue import enqueue

    settings = _settings()
    with session_scope(settings) as session:
        ids = due(session)
    for job_id in ids:
        enqueue(settings, "worker.tasks.import_contacts", job_id)
    return {"due": len(ids)}


# --- campaigns: the database holds the work; these tasks are wake-up calls -----------------------


@shared_task(name="worker.tasks.plan_campaign", acks_late=True)
def plan_campaign(campaign_id: int) -> dict[str, Any]:
    from crm.campaigns import pipeline

    return {"campaign_id": campaign_id, "planned": pipeline.plan(_settings(), campaign_id)}


@shared_task(name="worker.tasks.send_campaign", acks_late=True)
def send_campaign(campaign_id: int) -> dict[str, Any]:
    """Send batches for a while, then hand over to a fresh task (bounded tasks; pause is seen per message)."""
    from crm.campaigns import pipeline

    settings = _settings()
    summary = pipeline.send_some(settings, campaign_id)
    if summary.has_more:
        pipeline.kick(settings, campaign_id, 1)
    return summary.as_dict()


@shared_task(name="worker.tasks.sweep_campaigns", acks_late=True)
def sweep_campaigns() -> dict[str, Any]:
    from crm.campaigns import pipeline

    return pipeline.sweep(_settings()).as_dict()


@worker_ready.connect
def _sweep_campaigns_on_start(sender: Any = None, **_: Any) -> None:
    try:
        sweep_campaigns.delay()
    except Exception as exc:  # noqa: BLE001
        log.warning("initial campaign sweep not queued: %s", exc)


@worker_ready.connect
def _sweep_on_start(sender: Any = None, **_: Any) -> None:
    """A worker coming up sends whatever was accepted while no worker (or broker) was there."""
    try:
        sweep_outbox.delay()
    except Exception as exc:  # noqa: BLE001
        log.warning("initial sweep not queued: %s", exc)
