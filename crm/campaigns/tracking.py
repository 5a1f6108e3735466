"""Open pixel and click redirect: off by default, per campaign; every link signed.

A click token carries the delivery and the target URL under the HMAC, so the redirect only
ever goes where the email pointed: no open redirect. Engagement sets the delivery's
opened_at / clicked_at once and the contact's last_engaged_at (segments' `engaged`).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from crm.campaigns.models import Delivery
from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.tokens import TokenError, read_token

PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
         b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _record(session: Session, contact_id: int, delivery_id: int, column: str) -> None:
    now = utcnow()
    col = getattr(Delivery, column)
    session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.contact_id == contact_id,
                                           col.is_(None)).values(**{column: now}))
    if column == "clicked_at":  # a click implies the email was opened
        session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.contact_id == contact_id,
                                               Delivery.opened_at.is_(None)).values(opened_at=now))
    session.execute(update(Contact).where(Contact.id == contact_id).values(last_engaged_at=now))


def opened(session: Session, settings: Settings, token: str) -> bool:
    try:
        claims = read_token(settings.verification_secrets(), token, "open")
        delivery_id = int(claims.extra)
    except (TokenError, ValueError):
        return False
    _record(session, claims.contact_id, delivery_id, "opened_at")
    return True


def clicked(session: Session, settings: Settings, token: str) -> str | None:
    """The signed target URL, or None for a bad token."""
    try:
        claims = read_token(settings.verification_secrets(), token, "click")
        delivery_s, _, target = claims.extra.partition("|")
        delivery_id = int(delivery_s)
    except (TokenError, ValueError):
        return None
    if not target.startswith(("http://", "https://")):
        return None
    _record(session, claims.contact_id, delivery_id, "clicked_at")
    return target
