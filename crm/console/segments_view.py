"""What the segment pages show: the live count panel, the saved list with counts, who uses a segment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crm.campaigns.models import Campaign
from crm.console import segment_builder as builder
from crm.contacts import service as contacts
from crm.contacts.schemas import ContactPublic
from crm.errors import Invalid
from crm.segments import service as segments
from crm.segments.models import Segment

SAMPLE = 5
DEFAULT_LIST = "newsletter"


@dataclass
class CountPanel:
    count: int | None
    mailable: int | None
    list_key: str
    sample: list[ContactPublic]
    unfinished: int
    error: str = ""
    rules: dict[str, Any] | None = None

    @property
    def rules_json(self) -> str:
        return json.dumps(self.rules, indent=2)

    @property
    def list_label(self) -> str:
        return builder.LIST_LABELS.get(self.list_key, self.list_key)


def chosen_list(raw: Any) -> str:
    return raw if raw in builder.LIST_LABELS else DEFAULT_LIST


def count_panel(session: Session, rules: dict[str, Any], list_key: str, *, staff_email: str, target: str,
                unfinished: int = 0) -> CountPanel:
    """The raw count with a sample of who matches (audited, as the API's preview), and the mailable count.

    Both counts come from one statement (or two index reads), then the sample page.
    """
    try:
        found = segments.preview(session, rules, None, staff_email=staff_email, target=target, sample_size=SAMPLE,
                                 mailable_on=list_key)
    except Invalid as exc:
        return CountPanel(None, None, list_key, [], unfinished, error=exc.message, rules=rules)
    return CountPanel(found["count"], found["mailable"], list_key, found["sample"], unfinished, rules=rules)


@dataclass
class SavedRow:
    segment: Segment
    count: int
    campaigns: int


def listing(session: Session) -> list[SavedRow]:
    """Every saved segment by name, each with its count now and how many campaigns use it."""
    used = dict(session.execute(select(Campaign.segment_id, func.count()).where(Campaign.segment_id.is_not(None))
                                .group_by(Campaign.segment_id)).tuples().all())
    rows = list(session.scalars(select(Segment).order_by(Segment.name).limit(500)))
    return [SavedRow(s, segments.count(session, s.rules), int(used.get(s.id, 0))) for s in rows]


def used_by(session: Session, segment_id: int) -> list[tuple[int, str]]:
    return [(int(i), str(n)) for i, n in session.execute(
        select(Campaign.id, Campaign.name).where(Campaign.segment_id == segment_id).order_by(Campaign.id))]


def interest_choices(session: Session, saved: builder.Node | None = None) -> list[tuple[str, str]]:
    """The taxonomy as (key, label), plus any key a saved rule names that the taxonomy no longer has."""
    out = [(i.key, i.label) for i in contacts.list_interests(session)]
    known = {k for k, _ in out}
    extra: set[str] = set()
    stack = [saved] if saved else []
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.kind == "interest":
            extra |= node.picked("pick") - known
    return out + [(k, k) for k in sorted(extra)]
