"""The suppression list's API shapes (SPEC 14). Kept beside crm.contacts.schemas, which is the contact's."""

from __future__ import annotations

import datetime as dt

import msgspec

from crm.contacts import suppressions
from crm.contacts.suppressions import Entry
from crm.errors import Invalid
from crm.http import decode_cursor, encode_cursor


class SuppressionPublic(msgspec.Struct, kw_only=True):
    email: str  # empty once the person is erased: only a hash of the address is kept
    reason: str  # manual, unsubscribed, bounced, complained, erased
    created_at: str
    note: str  # staff's words when they added it by hand
    added_by: str  # the staff member who added it by hand, else empty


class SuppressionPage(msgspec.Struct):
    items: list[SuppressionPublic]
    next_cursor: str | None


class SuppressionAdd(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/suppressions. `reason`: manual (the default), unsubscribed, bounced or complained;
    any other text is kept as the note of a manual entry."""

    email: str
    reason: str | None = None


def suppression_public(entry: Entry) -> SuppressionPublic:
    return SuppressionPublic(email=entry.email, reason=entry.reason, created_at=entry.created_at.isoformat(),
                             note=entry.note, added_by=entry.added_by)


def decode_suppression_cursor(cursor: str | None) -> suppressions.Cursor | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        at, h = raw
        return dt.datetime.fromisoformat(at), str(h)
    except (TypeError, ValueError):
        raise Invalid.field("cursor", "is not a cursor this API gave out") from None


def encode_suppression_cursor(entries: list[suppressions.Entry], more: bool) -> str | None:
    return encode_cursor([entries[-1].created_at.isoformat(), entries[-1].email_hash]) if more and entries else None
