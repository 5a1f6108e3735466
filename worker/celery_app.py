"""The Celery app, configured only from crm.config, built when a worker starts (never at import)."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Celery
from celery.schedules import crontab

from crm import queue
from crm.celery_publisher import CeleryPublisher, celery_client
from crm.config import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    app = celery_client(settings, current=True)
    app.conf.update(include=["worker.tasks"], beat_schedule=beat_schedule(settings))
    app.conf.crm_settings = settings
    return app


def beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    return {
        "sweep-outbox": {"task": "worker.tasks.sweep_outbox", "schedule": settings.outbox_sweep_seconds},
        "sweep-jobs": {"task": "worker.tasks.sweep_jobs", "schedule": 60.0},
        # Scheduled launches, expired leases, lost send tasks, finished campaigns.
        "sweep-campaigns": {"task": "worker.tasks.sweep_campaigns",
                            "schedule": min(5.0, settings.outbox_sweep_seconds)},
        # Fan-out and delivery of outgoing webhooks; the task only starts POSTs and returns at once.
        "dispatch-webhooks": {"task": "worker.tasks.dispatch_webhooks", "schedule": settings.webhook_dispatch_seconds,
                              "options": {"expires": 10}},
        # Journeys: enrolments from committed events, exits, due steps into the pipeline, quiet hours.
        "advance-journeys": {"task": "worker.tasks.advance_journeys", "schedule": settings.journey_tick_seconds,
                             "options": {"expires": 30}},
        "clean-webhook-log": {"task": "worker.tasks.clean_webhook_log", "schedule": 3600.0},
        "digest-weekly": {
            "task": "worker.tasks.run_digests",
            "schedule": crontab(minute=0, hour=settings.digest_hour, day_of_week=settings.digest_weekly_day),
            "args": ("weekly",),
        },
        "donation-overdue-summary": {
            "task": "worker.tasks.donation_overdue_summary",
            "schedule": crontab(minute=0, hour=settings.donation_summary_hour),
        },
        # Lapsed waitlist offers pass on and shift reminders go out: minutes matter for both.
        "volunteer-shifts": {"task": "worker.tasks.sweep_volunteer_shifts", "schedule": 60.0},
        "qualification-warnings": {"task": "worker.tasks.warn_expiring_qualifications", "schedule": 3600.0},
        "digest-monthly": {
            "task": "worker.tasks.run_digests",
            "schedule": crontab(minute=0, hour=settings.digest_hour, day_of_month=settings.digest_monthly_day),
            "args": ("monthly",),
        },
    }


@cache
def worker_app() -> Celery:
    """The worker process's one app, from its environment; its tasks publish through it."""
    app = make_celery(get_settings())
    queue.install(CeleryPublisher(app.conf.crm_settings, app))
    return app


def __getattr__(name: str) -> Any:
    # `celery -A worker.celery_app:app` reads this attribute: the app is built only then.
    if name == "app":
        return worker_app()
    raise AttributeError(name)
