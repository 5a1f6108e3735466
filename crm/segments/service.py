"""Segments: counting and previewing a rule tree, and the saved segments staff name and reuse.

The rule tree and its SQL are crm.segments.compiler's; its public names are re-exported here.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from crm.bodies import present
from crm.contacts import service as contacts
from crm.contacts.models import (
    Contact,
    ListKey,
)
from crm.contacts.schemas import contacts_public
from crm.db import keyset_page, utcnow
from crm.errors import Conflict, Invalid, NotFound
from crm.segments.compiler import (  # noqa: F401 - the segment interface other domains use
    CONDITIONS,
    MAX_DEPTH,
    MAX_NODES,
    OPERATORS,
    SAMPLE_SIZE,
    audience,
    compile_rules,
    count_with_mailable,
    driven_count,
    matching,
    validate_rules,
)
from crm.segments.models import Segment
from crm.segments.schemas import SegmentCreate, SegmentPreviewRequest, SegmentUpdate
from crm.staff.service import audit

# --- count and preview ------------------------------------------------------------------------


def check_list(list_key: str | None) -> str | None:
    if list_key is not None and list_key not in [k.value for k in ListKey]:
        raise Invalid.field("list", f"unknown list {list_key!r}; expected one of "
                                    f"{', '.join(k.value for k in ListKey)}")
    return list_key


def count(session: Session, rules: dict[str, Any] | None, list_key: str | None = None) -> int:
    """How many contacts match; the tree's shape is checked, interest keys only when saved or previewed."""
    where = matching(rules, check_list(list_key))  # validates, and is the general form
    stmt = driven_count(rules, list_key)
    if stmt is None:
        stmt = select(func.count()).select_from(Contact).where(where)
    return int(session.scalar(stmt) or 0)


def count_and_mailable(session: Session, rules: dict[str, Any] | None, list_key: str) -> tuple[int, int]:
    """How many match (not erased), and how many of those may be mailed on list_key.

    Each from its link-table index when the tree allows both; otherwise one pass over the
    contacts answers the two, where two counts would scan them twice.
    """
    check_list(list_key)
    one_pass = count_with_mailable(rules, list_key)  # compiling it validates the tree
    raw, gated = driven_count(rules), driven_count(rules, list_key)
    if raw is not None and gated is not None:
        return int(session.scalar(raw) or 0), int(session.scalar(gated) or 0)
    n, mailable = session.execute(one_pass).one()
    return int(n), int(mailable)


def preview(session: Session, rules: dict[str, Any] | None, list_key: str | None = None,
            *, staff_email: str, target: str, sample_size: int = SAMPLE_SIZE,
            mailable_on: str | None = None) -> dict[str, Any]:
    """{"count", "sample"}: the newest matching contacts as the contact shape; audited (it shows people).

    With `mailable_on` (and no `list_key`) also "mailable": how many of them that list may mail.
    """
    where = matching(rules, check_list(list_key), contacts.interest_keys(session))
    mailable: int | None = None
    if mailable_on is not None and list_key is None:
        n, mailable = count_and_mailable(session, rules, mailable_on)
    else:
        n = count(session, rules, list_key)
    sample = list(session.scalars(select(Contact).where(where).order_by(Contact.id.desc()).limit(sample_size)))
    audit(session, staff_email, "segment.preview", target, rows=n,
          detail={"list": list_key, "sample": [c.id for c in sample]})
    found: dict[str, Any] = {"count": n, "sample": contacts_public(session, sample)}
    if mailable is not None:
        found["mailable"] = mailable
    return found


def preview_unsaved(session: Session, data: SegmentPreviewRequest, list_key: str | None,
                    staff_email: str) -> dict[str, Any]:
    """POST /segments/preview: `{"rules": tree, "list"?: key}` (the list may also come as ?list=)."""
    chosen = list_key if data.list is msgspec.UNSET else data.list
    return preview(session, data.rules, chosen, staff_email=staff_email, target="segment:unsaved")


# --- saved segments ---------------------------------------------------------------------------

def _parse(session: Session, body: SegmentCreate | SegmentUpdate | dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The schema has refused unknown fields and wrong JSON types; this checks what they mean."""
    data = present(body)
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = contacts.clean_text(data.get("name"), "name", max_length=200)
        if not name:
            raise Invalid.field("name", "a segment needs a name")
        out["name"] = name
    if "description" in data:
        out["description"] = contacts.clean_text(data["description"], "description", max_length=2000,
                                                 single_line=False)
    if "rules" in data or not partial:
        rules = data.get("rules")
        if rules is None:
            raise Invalid.field("rules", "a segment needs a rule tree (use {\"all\": []} for everyone)")
        validate_rules(rules, contacts.interest_keys(session))
        out["rules"] = rules
    return out


def _name_free(session: Session, name: str, segment_id: int | None) -> None:
    clash = session.scalars(select(Segment.id).where(Segment.name == name)).first()
    if clash is not None and clash != segment_id:
        raise Conflict(f"a segment named {name!r} already exists", fields={"name": "already exists"})


def get_segment(session: Session, segment_id: int) -> Segment:
    seg = session.get(Segment, segment_id)
    if seg is None:
        raise NotFound(f"no segment {segment_id}")
    return seg


def create_segment(session: Session, data: SegmentCreate | dict[str, Any], staff_email: str) -> Segment:
    fields = _parse(session, data, partial=False)
    _name_free(session, fields["name"], None)
    now = utcnow()
    seg = Segment(**fields, created_by=staff_email, created_at=now, updated_at=now)
    session.add(seg)
    session.flush()
    return seg


def update_segment(session: Session, segment_id: int, data: SegmentUpdate | dict[str, Any]) -> Segment:
    seg = get_segment(session, segment_id)
    fields = _parse(session, data, partial=True)
    if "name" in fields:
        _name_free(session, fields["name"], segment_id)
    for key, value in fields.items():
        setattr(seg, key, value)
    seg.updated_at = utcnow()
    session.add(seg)
    session.flush()
    return seg


def delete_segment(session: Session, segment_id: int) -> None:
    """Refused (409) while a campaign points at it: the foreign key says so (ON DELETE RESTRICT)."""
    seg = get_segment(session, segment_id)
    try:
        with session.begin_nested():
            session.delete(seg)
            session.flush()
    except IntegrityError:
        raise Conflict(f"segment {segment_id} is used by a campaign; change or delete the campaign first",
                       fields={"segment": "used by a campaign"}) from None


def list_segments(session: Session, after_id: int | None, limit: int) -> tuple[list[Segment], bool]:
    stmt = select(Segment)
    return keyset_page(session, stmt, Segment.id, after_id, limit)


def segment_dict(seg: Segment) -> dict[str, Any]:
    return {"id": seg.id, "name": seg.name, "description": seg.description, "rules": seg.rules,
            "created_by": seg.created_by, "created_at": seg.created_at.isoformat(),
            "updated_at": seg.updated_at.isoformat()}

