"""The sending pipeline: claim, send, record. The delivery rows are its only memory.

Its neighbours: `planning.plan` inserts the deliveries, `lifecycle.start_sending` starts a campaign
whose caller inserted its own (digests, invitations), `sweep.sweep` is the beat's safety net.
Its parts live in `crm.campaigns.send` (claims, prepare, record, batch); every name callers
used from here is still importable from here.

- `send_some(settings, campaign_id)`: claim a batch, re-check each person just before their
  message (unsubscribed, paused, cancelled -> nothing goes), send the batch over
  CRM_SMTP_CONNECTIONS SMTP connections in rounds, paced by CRM_SEND_RATE and CRM_DOMAIN_RATES, commit each row as it is answered,
  then check the campaign's failure rate (`autopause`). A worker killed mid-batch leaves rows
  `sending` whose lease expires; they go back to the queue, so at most the messages in flight
  (one per SMTP connection, CRM_SMTP_CONNECTIONS: taken by the relay but not yet committed) can
  go twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import func, select
from sqlmodel import Session

from crm.campaigns import autopause, lifecycle
from crm.campaigns.domain_rates import DomainPacer
from crm.campaigns.models import Campaign, Delivery
from crm.campaigns.ratelimit import Pacer, limiter_for
from crm.campaigns.send.batch import Rounds, send_batch
from crm.campaigns.send.claims import (
    PENDING,
    backoff,
    claim,
    finish_if_done,
    hand_back,
    has_claimable,
    next_due,
    put_off,
    release,
)
from crm.campaigns.send.prepare import (
    CONTEXT_EXTRAS,
    CampaignSender,
    ContextExtras,
    batch_people,
    content_items,
    digest_items,
    message_id_for,
)
from crm.campaigns.send.record import MAX_ATTEMPTS, Recorder, SendSummary
from crm.config import Settings
from crm.db import get_engine, session_scope, utcnow
from crm.mail import OneAtATime, Sender, make_round_sender
from crm.queue import PLAN_CAMPAIGN, SEND_CAMPAIGN

log = logging.getLogger(__name__)

PLAN_TASK = PLAN_CAMPAIGN
SEND_TASK = SEND_CAMPAIGN
SEND_TASKS_PER_CAMPAIGN = lifecycle.SEND_TASKS_PER_CAMPAIGN
WAIT_FOR_DUE = 2.0  # seconds a sender waits for put-off rows to come due rather than end its run

__all__ = [
    "CONTEXT_EXTRAS", "MAX_ATTEMPTS", "PENDING", "PLAN_TASK", "SEND_TASK", "SEND_TASKS_PER_CAMPAIGN",
    "CampaignSender", "ContextExtras", "Recorder", "SendSummary", "backoff", "batch_people", "claim",
    "content_items", "counts", "digest_items", "finish_if_done", "hand_back", "has_claimable",
    "message_id_for", "put_off", "release", "send_and_hand_over", "send_some",
]


def _wait_for_due(session: Session, campaign_id: int, until: float) -> bool:
    """Nothing claimable now: sleep until put-off rows come due, if that is soon. True if it waited."""
    due = next_due(session, campaign_id)
    session.commit()
    if due is None:
        return False
    pause = (due - utcnow()).total_seconds()
    if pause > WAIT_FOR_DUE or time.monotonic() + pause > until:
        return False
    time.sleep(max(0.0, pause) + 0.01)
    return True


def _due_soon(session: Session, campaign_id: int) -> bool:
    """Rows put off for their domain come due within seconds: a fresh task should go on with them."""
    due = next_due(session, campaign_id)
    return due is not None and due - utcnow() <= dt.timedelta(seconds=WAIT_FOR_DUE)


def send_some(settings: Settings, campaign_id: int, sender: Sender | None = None, *,
              max_seconds: float = 30.0, batch_size: int | None = None) -> SendSummary:
    """Claim and send batches for up to max_seconds; `has_more` asks the caller to queue another run.

    With no `sender`: CRM_SMTP_CONNECTIONS connections in rounds (smtp), the configured sender otherwise.
    """
    summary = SendSummary(campaign_id)
    own_sender = sender is None
    rounds = make_round_sender(settings) if sender is None else OneAtATime(sender)
    try:
        with Session(get_engine(settings), expire_on_commit=False) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                return summary
            prepared = CampaignSender(settings, session, campaign)
            session.commit()
            _run(settings, session, prepared, rounds, summary, max_seconds, batch_size)
    finally:
        if own_sender:
            rounds.close()
    return summary


def _run(settings: Settings, session: Session, prepared: CampaignSender, sender: Rounds, summary: SendSummary,
         max_seconds: float, batch_size: int | None) -> None:
    campaign_id = prepared.campaign_id
    until = time.monotonic() + max_seconds
    lease = dt.timedelta(seconds=settings.lease_seconds)
    size = batch_size or settings.send_batch_size
    pacers = (Pacer(limiter_for(settings), chunk=max(1, int(settings.send_rate / 10))), DomainPacer(settings))
    if autopause.check_complaints(session, settings, [campaign_id]):
        summary.stopped = "paused"
        return
    recorder = Recorder(settings, session, campaign_id, prepared.list)
    try:
        while time.monotonic() < until:
            ids, _ = claim(session, campaign_id, size, lease)
            session.commit()
            if not ids:
                # Rows this run put off for their domain come back soon: wait for them, not for the beat.
                if summary.put_off and _wait_for_due(session, campaign_id, until):
                    continue
                break
            summary.batches += 1
            # Stop well before the lease runs out, so nobody else can take these rows meanwhile.
            deadline = time.monotonic() + lease.total_seconds() * 0.8
            stop = send_batch(settings, session, recorder, prepared, sender, ids, pacers, deadline, summary)
            recorder.flush()
            if autopause.check_failures(session, settings, campaign_id):
                stop = "paused"
            if stop:
                summary.stopped = stop
                break
        else:
            summary.stopped = "time"
    finally:
        recorder.close()
    pacers[0].unused()
    if summary.stopped in (None, "time", "lease"):
        summary.has_more = has_claimable(session, campaign_id) or (
            summary.put_off > 0 and _due_soon(session, campaign_id))
    finish_if_done(session, campaign_id)
    session.commit()


def send_and_hand_over(settings: Settings, campaign_id: int) -> SendSummary:
    """The send task: send for a while, then (if rows remain) wake one fresh task to go on."""
    summary = send_some(settings, campaign_id)
    if summary.has_more:
        with session_scope(settings) as session:
            lifecycle.kick(session, campaign_id, 1)
    return summary


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Delivery counts per status in one GROUP BY."""
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                           .group_by(Delivery.status)).all()
    return {status: n for status, n in rows}
