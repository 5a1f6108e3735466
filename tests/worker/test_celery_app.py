"""The worker's Celery app: built from settings when asked for, never at import; tasks by name."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from crm import queue
from crm.celery_publisher import CeleryPublisher, celery_client
from worker.celery_app import make_celery


def test_importing_the_worker_builds_no_app() -> None:
    sys.modules.pop("worker.celery_app", None)
    module = importlib.import_module("worker.celery_app")
    assert module.worker_app.cache_info().currsize == 0


def test_the_app_comes_from_settings_and_knows_every_task(settings: Any) -> None:
    app = make_celery(settings)
    app.loader.import_default_modules()
    assert app.conf.task_default_queue == settings.instance
    assert app.conf.crm_settings is settings
    names = set(app.tasks)
    assert {queue.SEND_OUTBOX, queue.IMPORT_CONTACTS, queue.PLAN_CAMPAIGN, queue.SEND_CAMPAIGN} <= names
    assert {"worker.tasks.sweep_outbox", "worker.tasks.sweep_campaigns", "worker.tasks.run_digests"} <= names


def test_sender_and_worker_agree_on_the_queue(settings: Any) -> None:
    assert celery_client(settings).conf.task_default_queue == make_celery(settings).conf.task_default_queue


def test_publisher_reports_a_broker_it_cannot_reach(settings: Any) -> None:
    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    assert CeleryPublisher(down).send("worker.tasks.noop", ()) is False
