"""Thin tasks: take ids, open a session, call one crm service, return a summary.

They publish through the worker app's publisher (installed by `worker.celery_app.worker_app`);
follow-up work is published by the services themselves when their session commits.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_ready

from crm.campaigns import digests, pipeline, planning, sweep
from crm.config import Settings
from crm.contacts import importer
from crm.db import session_scope
from crm.donations import service as donations
from crm.jobs import service as jobs
from crm.outbox import service as outbox

log = logging.getLogger(__name__)


def _settings() -> Settings:
    return current_app.conf.crm_settings  # type: ignore[no-any-return]


@shared_task(name="worker.tasks.send_outbox_message", acks_late=True)
def send_outbox_message(message_id: int) -> str:
    return outbox.deliver_one(_settings(), message_id)


@shared_task(name="worker.tasks.sweep_outbox", acks_late=True)
def sweep_outbox() -> dict[str, Any]:
    """Send what the broker never delivered (it was down, or a worker died mid-lease)."""
    return outbox.sweep(_settings())


@shared_task(name="worker.tasks.run_digests", acks_late=True)
def run_digests(frequency: str) -> dict[str, Any]:
    """Plan the digests due now; the pipeline's send tasks are published when this commits."""
    with session_scope(_settings()) as session:
        return digests.plan_run(session, _settings(), frequency, actor="beat").as_dict()


@shared_task(name="worker.tasks.donation_overdue_summary", acks_late=True)
def donation_overdue_summary() -> dict[str, Any]:
    """Daily: tell donor services what waits too long (at most one email a day, by its dedupe key)."""
    with session_scope(_settings()) as session:
        return {"queued": donations.queue_overdue_summary(session, _settings())}


@shared_task(name="worker.tasks.sweep_volunteer_shifts", acks_late=True)
def sweep_volunteer_shifts() -> dict[str, Any]:
    """Offers not taken in time pass to the next in line; reminders due go out (each once)."""
    from crm.volunteers import sweeps

    settings = _settings()
    with session_scope(settings) as session:
        summary, _ = sweeps.shifts_sweep(session, settings)  # the emails are published on commit
    return summary


@shared_task(name="worker.tasks.warn_expiring_qualifications", acks_late=True)
def warn_expiring_qualifications() -> dict[str, Any]:
    from crm.volunteers import sweeps

    settings = _settings()
    with session_scope(settings) as session:
        summary, _ = sweeps.qualification_warnings(session, settings)
    return summary


@shared_task(name="worker.tasks.import_contacts", acks_late=True)
def import_contacts(job_id: int) -> dict[str, Any]:
    """A CSV import job; resumes after the last committed batch if a worker died mid-file."""
    with session_scope(_settings()) as session:
        return jobs.summary(importer.run(session, job_id))


@shared_task(name="worker.tasks.sweep_jobs", acks_late=True)
def sweep_jobs() -> dict[str, Any]:
    """Re-publish import jobs whose wake-up call was lost (broker down) or whose worker died."""
    with session_scope(_settings()) as session:
        return {"due": jobs.republish_due(session)}


@shared_task(name="worker.tasks.plan_campaign", acks_late=True)
def plan_campaign(campaign_id: int) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "planned": planning.plan(_settings(), campaign_id)}


@shared_task(name="worker.tasks.send_campaign", acks_late=True)
def send_campaign(campaign_id: int) -> dict[str, Any]:
    """Send batches for a while, then hand over to a fresh task (bounded; pause is seen per message)."""
    return pipeline.send_and_hand_over(_settings(), campaign_id).as_dict()


@shared_task(name="worker.tasks.advance_journeys", acks_late=True)
def advance_journeys() -> dict[str, Any]:
    """Enrol, exit and hand due journey steps to the campaign pipeline (safe to run twice at once)."""
    from crm.journeys import stepping

    return stepping.tick(_settings()).as_dict()


@shared_task(name="worker.tasks.sweep_campaigns", acks_late=True)
def sweep_campaigns() -> dict[str, Any]:
    return sweep.sweep(_settings()).as_dict()


@worker_ready.connect
def _sweep_on_start(sender: Any = None, **_: Any) -> None:
    """A worker coming up sends whatever was accepted while no worker (or broker) was there."""
    for task in (sweep_outbox, sweep_campaigns):
        try:
            task.delay()
        except Exception as exc:  # noqa: BLE001
            log.warning("initial %s not queued: %s", task.name, exc)


# --- outgoing webhooks: the database holds the deliveries; this task only starts the POSTs ------------


@shared_task(name="worker.tasks.dispatch_webhooks", acks_late=True)
def dispatch_webhooks() -> dict[str, Any]:
    """Fan out new events and start due deliveries in this process's webhook threads (returns at once)."""
    from crm.webhooks import dispatcher

    return dispatcher.process_dispatcher().dispatch(_settings())


@shared_task(name="worker.tasks.clean_webhook_log", acks_late=True)
def clean_webhook_log() -> dict[str, Any]:
    from crm.webhooks import delivery

    with session_scope(_settings()) as session:
        return {"attempts_deleted": delivery.cleanup(session)}
