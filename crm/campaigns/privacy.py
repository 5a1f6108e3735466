"""Deliveries to one person: exported with their campaign; kept on erasure (statistics), errors cleared."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.campaigns.models import Campaign, Delivery
from crm.db import iso


def export_rows(session: Session, contact_id: int) -> dict[str, Any]:
    rows = session.execute(select(Delivery, Campaign.name, Campaign.kind)
                           .join(Campaign, Campaign.id == Delivery.campaign_id)
                           .where(Delivery.contact_id == contact_id).order_by(Delivery.id))
    return {"deliveries": [
        {"campaign_id": d.campaign_id, "campaign": name, "kind": kind, "status": d.status,
         "sent_at": iso(d.sent_at), "opened_at": iso(d.opened_at), "clicked_at": iso(d.clicked_at),
         "unsubscribed_at": iso(d.unsubscribed_at), "bounced_at": iso(d.bounced_at)}
        for d, name, kind in rows]}


def forget(session: Session, contact_id: int) -> None:
    session.execute(update(Delivery).where(Delivery.contact_id == contact_id).values(error=None))
