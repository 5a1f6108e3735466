"""Send the opportunity invitations queued in the campaign pipeline, in this process (MemorySender)."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import select

from crm.campaigns import pipeline
from crm.campaigns.models import Campaign
from crm.config import Settings
from crm.db import session_scope
from crm.mail import MemorySender


def send_invitations(settings: Settings) -> list[EmailMessage]:
    """What a worker would do with the send tasks notify queued; returns every message sent so far."""
    with session_scope(settings) as s:
        ids = list(s.scalars(select(Campaign.id).where(Campaign.kind == "opportunity", Campaign.state == "sending")))
    for campaign_id in ids:
        pipeline.send_some(settings, campaign_id, MemorySender())
    return list(MemorySender.outbox)
