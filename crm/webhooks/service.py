"""Endpoints (admins): create, change, rotate, test; the delivery log and replays."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crm.config import Settings
from crm.db import keyset_page, utcnow
from crm.errors import Invalid, NotFound
from crm.events import service as events
from crm.webhooks import safety, signing
from crm.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

ROTATION_OVERLAP = dt.timedelta(hours=24)
ALL = "*"


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise Invalid.field("events", f'must be a non-empty list of event types or "*" ({", ".join(events.TYPES)})')
    unknown = [v for v in value if v != ALL and v not in events.TYPES]
    if unknown:
        raise Invalid.field("events", f"unknown event type {unknown[0]!r}")
    return sorted(set(value))


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 500 or "\r" in value or "\n" in value:
        raise Invalid.field("description", "must be one line of at most 500 characters")
    return value.strip()


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid.field("body", "must be a JSON object")
    return data


def endpoint_dict(ep: WebhookEndpoint) -> dict[str, Any]:
    return {"id": ep.id, "url": ep.url, "events": ep.events, "description": ep.description,
            "enabled": ep.enabled, "disabled_reason": ep.disabled_reason,
            "rotating_until": ep.old_secret_until.isoformat() if ep.old_secret_until else None,
            "last_success_at": ep.last_success_at.isoformat() if ep.last_success_at else None,
            "failing_since": ep.failing_since.isoformat() if ep.failing_since else None,
            "created_at": ep.created_at.isoformat(), "updated_at": ep.updated_at.isoformat()}


def create(session: Session, settings: Settings, data: Any) -> tuple[WebhookEndpoint, str]:
    data = _body(data)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, check in (("url", lambda v: _url(settings, v)), ("events", _events),
                        ("description", _description)):
        try:
            values[name] = check(data.get(name))
        except Invalid as exc:
            errors.update(exc.fields)
    if errors:
        raise Invalid("invalid webhook endpoint", fields=errors)
    secret = signing.new_secret()
    ep = WebhookEndpoint(**values, secret=secret)
    session.add(ep)
    session.flush()
    return ep, secret


def _url(settings: Settings, value: Any) -> str:
    if value is None:
        raise Invalid.field("url", "is required")
    safety.check_url(value, settings.env == "production")
    return str(value)


def get(session: Session, endpoint_id: int) -> WebhookEndpoint:
    ep = session.get(WebhookEndpoint, endpoint_id)
    if ep is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return ep


def search(session: Session, after_id: int | None, limit: int) -> tuple[list[WebhookEndpoint], bool]:
    return keyset_page(session, select(WebhookEndpoint), WebhookEndpoint.id, after_id, limit)


def patch(session: Session, settings: Settings, endpoint_id: int, data: Any) -> WebhookEndpoint:
    data = _body(data)
    ep = get(session, endpoint_id)
    errors: dict[str, str] = {}
    unknown = set(data) - {"url", "events", "description", "enabled"}
    for name in sorted(unknown):
        errors[name] = "unknown field"
    try:
        if "url" in data:
            ep.url = _url(settings, data["url"])
        if "events" in data:
            ep.events = _events(data["events"])
        if "description" in data:
            ep.description = _description(data["description"])
    except Invalid as exc:
        errors.update(exc.fields)
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            errors["enabled"] = "must be true or false"
        elif data["enabled"] and not ep.enabled:
            # A fresh start: the 3-day clock counts from now, owed deliveries go at once.
            ep.enabled, ep.disabled_reason, ep.failing_since = True, None, None
            session.execute(update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                                          WebhookDelivery.state == DeliveryState.pending)
                            .values(next_attempt_at=utcnow()))
        elif not data["enabled"]:
            ep.enabled, ep.disabled_reason = False, ep.disabled_reason or "disabled by staff"
    if errors:
        raise Invalid("invalid webhook endpoint", fields=errors)
    ep.updated_at = utcnow()
    session.add(ep)
    session.flush()
    return ep


def delete(session: Session, endpoint_id: int) -> None:
    session.delete(get(session, endpoint_id))
    session.flush()


def rotate_secret(session: Session, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    ep = get(session, endpoint_id)
    secret = signing.new_secret()
    ep.old_secret, ep.old_secret_until = ep.secret, utcnow() + ROTATION_OVERLAP
    ep.secret, ep.updated_at = secret, utcnow()
    session.add(ep)
    session.flush()
    return ep, secret


def send_test(session: Session, endpoint_id: int) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint alone (fan-out never sends test events elsewhere)."""
    ep = get(session, endpoint_id)
    event_id = events.record(session, events.TEST_TYPE, webhook_endpoint_id=ep.id)
    delivery = WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id, type=events.TEST_TYPE,
                               webhook_id=webhook_id_for(event_id))
    session.add(delivery)
    session.flush()
    return delivery


def webhook_id_for(event_id: int) -> str:
    """The message id: one per event, the same on every retry and replay."""
    return f"msg_{event_id}"


def deliveries(session: Session, endpoint_id: int, after_id: int | None, limit: int
               ) -> tuple[list[dict[str, Any]], bool]:
    get(session, endpoint_id)
    rows, more = keyset_page(session, select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id),
                             WebhookDelivery.id, after_id, limit)
    attempts: dict[int, list[dict[str, Any]]] = {d.id: [] for d in rows}  # type: ignore[misc]
    if rows:
        for a in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(attempts)))
                                 .order_by(WebhookAttempt.id)):
            attempts[a.delivery_id].append({"at": a.at.isoformat(), "status": a.status, "duration_ms": a.duration_ms,
                                            "error": a.error, "response_bytes": a.response_bytes})
    return [{"id": d.id, "webhook_id": d.webhook_id, "type": d.type, "event_id": d.event_id, "state": d.state,
             "created_at": d.created_at.isoformat(),
             "next_attempt_at": d.next_attempt_at.isoformat() if d.state == DeliveryState.pending else None,
             "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
             "attempts": attempts[d.id]} for d in rows], more  # type: ignore[index]


def replay(session: Session, delivery_id: int) -> WebhookDelivery:
    """Send again with the same webhook-id (receivers that dedupe will see it as the same message)."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    if d.state != DeliveryState.delivering:
        d.state, d.attempts, d.next_attempt_at, d.lease_until = DeliveryState.pending, 0, utcnow(), None
        session.add(d)
        session.flush()
    return d
