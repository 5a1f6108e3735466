"""A campaign's state moves: the conditional UPDATEs that both the API's service and the pipeline use.

Every move is `UPDATE ... WHERE state IN (allowed)`: whoever wins the row (a route, the beat, a
second launch) is told so by the row count, so no move happens twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from crm.campaigns.models import Campaign, CampaignState
from crm.db import utcnow
from crm.errors import Conflict, NotFound
from crm.events import service as events
from crm.queue import SEND_CAMPAIGN, publish

S = CampaignState
SEND_TASKS_PER_CAMPAIGN = 4  # wake-up calls per kick; more workers than this still share via SKIP LOCKED


def get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def move(session: Session, campaign_id: int, from_states: Iterable[str], to: str, **values: Any) -> bool:
    """Move one campaign if it is in one of `from_states`; True when this call moved it."""
    now = utcnow()
    result = session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state.in_(list(from_states)))
                             .values(state=to, updated_at=now, **values))
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def illegal(campaign: Campaign, action: str, allowed: Iterable[str]) -> Conflict:
    return Conflict(f"cannot {action} a campaign that is {campaign.state} (only from {', '.join(allowed)})",
                    fields={"state": campaign.state})


def refresh(session: Session, campaign_id: int) -> Campaign:
    session.expire_all()
    return get(session, campaign_id)


def start(session: Session, campaign_id: int, from_states: Iterable[str] = (S.draft, S.scheduled)) -> bool:
    """The one flip to `sending`: whoever wins it (route or beat) queues the plan."""
    started = move(session, campaign_id, from_states, S.sending, started_at=utcnow())
    if started:
        events.record(session, "campaign.started", campaign_id=campaign_id)
    return started


def start_sending(session: Session, campaign_id: int) -> bool:
    """For callers that inserted their own deliveries: flip to sending, wake the senders on commit."""
    now = utcnow()
    result = session.execute(
        update(Campaign).where(Campaign.id == campaign_id,
                               Campaign.state.in_([CampaignState.draft, CampaignState.scheduled]))
        .values(state=CampaignState.sending, started_at=now, planned_at=now, updated_at=now)
    )
    started = result.rowcount == 1
    if started:
        kick(session, campaign_id)
    return started


def kick(session: Session, campaign_id: int, n: int = SEND_TASKS_PER_CAMPAIGN) -> None:
    """Wake `n` senders for this campaign once the session commits."""
    publish(session, SEND_CAMPAIGN, campaign_id, copies=n)
