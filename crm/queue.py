"""Wake-up calls to the workers. The database holds the work; the broker only says "look now".

Publishing may fail (broker down): that is logged and left to the periodic sweep,
which finds the rows by their state. Nothing here ever raises to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from crm.config import Settings

log = logging.getLogger(__name__)

SEND_OUTBOX = "worker.tasks.send_outbox_message"


def enqueue(settings: Settings, task: str, *args: Any, countdown: float | None = None) -> bool:
    from worker.celery_app import celery_for

    try:
        celery_for(settings).send_task(
            task, args=args, countdown=countdown, retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5},
        )
        return True
    except Exception as exc:  # noqa: BLE001 - any broker failure is recovered by the sweep
        log.warning("could not enqueue %s%r (the sweep will pick it up): %s", task, args, exc)
        return False


def enqueue_outbox(settings: Settings, ids: Iterable[int]) -> None:
    for message_id in ids:
        if not enqueue(settings, SEND_OUTBOX, message_id):
            break
