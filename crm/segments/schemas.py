"""The staff API's segment shapes: a saved segment, a page of them, and a count with its sample."""

from __future__ import annotations

from typing import Any

import msgspec

from crm.contacts.models import ListKey
from crm.contacts.schemas import ContactPublic
from crm.segments.models import Segment


class SegmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/segments; the service checks the rule tree (SPEC section 6) and that the name is free."""

    name: str
    description: str = ""
    rules: dict[str, Any]  # the rule tree of SPEC section 6; {"all": []} is everyone


class SegmentUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PUT /api/v1/segments/{id}: the fields present are replaced, the others kept."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    rules: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class SegmentPreviewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/segments/preview: an unsaved rule tree; `list` here wins over ?list=."""

    rules: dict[str, Any]
    list: ListKey | None | msgspec.UnsetType = msgspec.UNSET


class SegmentPublic(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str
    rules: dict[str, Any]  # the rule tree of SPEC section 6
    created_by: str | None
    created_at: str
    updated_at: str


class SegmentPage(msgspec.Struct):
    items: list[SegmentPublic]
    next_cursor: str | None


class SegmentPreview(msgspec.Struct):
    count: int
    sample: list[ContactPublic]  # the newest matching contacts


def segment_public(seg: Segment) -> SegmentPublic:
    assert seg.id is not None
    return SegmentPublic(id=seg.id, name=seg.name, description=seg.description, rules=seg.rules,
                         created_by=seg.created_by, created_at=seg.created_at.isoformat(),
                         updated_at=seg.updated_at.isoformat())
