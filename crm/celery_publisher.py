"""The Celery implementation of `crm.queue.Publisher`, for the processes that are not the worker.

It lives on the top floor (beside `app` and `cli`, which install it) because `crm` never imports
`worker` and no domain module may import celery. The worker's own app reuses `celery_config`,
so a task sent from the API lands in the queue the worker reads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery

from crm.config import Settings

log = logging.getLogger(__name__)

RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def _prepare_broker(url: str) -> None:
    if url.startswith("sqla+sqlite:///"):
        path = url.removeprefix("sqla+sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def transport_options(url: str) -> dict[str, object]:
    if url.startswith(("redis://", "rediss://")):
        # Never a countdown longer than this: the database, not the broker, holds delays.
        return {"visibility_timeout": 3600}
    # kombu's SQLAlchemy transport hands its options to create_engine(); give it none.
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    """What sender and worker must agree on: the queue, serialisation, the broker's options."""
    return {
        "task_default_queue": settings.instance,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": settings.timezone,
        "enable_utc": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        "broker_transport_options": transport_options(settings.broker_url),
        "worker_hijack_root_logger": False,
    }


def celery_client(settings: Settings, *, current: bool = False) -> Celery:
    """A Celery app that only sends (no tasks imported, no schedule); the worker builds on it."""
    _prepare_broker(settings.broker_url)
    app = Celery("crm", broker=settings.broker_url, set_as_current=current)
    app.conf.update(celery_config(settings))
    return app


class CeleryPublisher:
    """Sends by task name through `app`, built on first use (nothing connects at import or install)."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self._settings = settings
        self._app = app

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = celery_client(self._settings)
        return self._app

    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        try:
            self.app.send_task(task, args=args, retry=True, retry_policy=RETRY_POLICY)
            return True
        except Exception as exc:  # noqa: BLE001 - any broker failure is recovered by the sweeps
            log.warning("could not enqueue %s%r (the sweep will pick it up): %s", task, args, exc)
            return False
