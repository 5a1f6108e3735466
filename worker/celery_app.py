"""The Celery app, configured only from crm.config."""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from crm.config import Settings, get_settings


def _prepare_broker(url: str) -> None:
    if url.startswith("sqla+sqlite:///"):
        from pathlib import Path

        path = url.removeprefix("sqla+sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_celery(settings: Settings) -> Celery:
    _prepare_broker(settings.broker_url)
    app = Celery("crm", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_default_queue=settings.instance,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone=settings.timezone,
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options=transport_options(settings.broker_url),
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(settings),
    )
    app.conf.crm_settings = settings
    return app


def transport_options(url: str) -> dict[str, object]:
    if url.startswith(("redis://", "rediss://")):
        # Never a countdown longer than this: the database, not the broker, holds delays.
        return {"visibility_timeout": 3600}
    # kombu's SQLAlchemy transport hands its options to create_engine(); give it none.
    return {}


def beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    return {
        "sweep-outbox": {"task": "worker.tasks.sweep_outbox", "schedule": settings.outbox_sweep_seconds},
        "sweep-jobs": {"task": "worker.tasks.sweep_jobs", "schedule": 60.0},
        # Scheduled launches, expired leases, lost send tasks, finished campaigns.
        "sweep-campaigns": {"task": "worker.tasks.sweep_campaigns",
                            "schedule": min(5.0, settings.outbox_sweep_seconds)},
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


_apps: dict[int, Celery] = {}


def celery_for(settings: Settings) -> Celery:
    """One Celery app per Settings object (the API's, the worker's, a test's)."""
    key = id(settings)
    if key not in _apps:
        _apps[key] = make_celery(settings)
    return _apps[key]


app = celery_for(get_settings())
