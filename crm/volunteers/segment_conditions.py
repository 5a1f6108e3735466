"""Segment conditions on volunteers' shifts and hours, compiled into the one segment query.

`{"volunteer": {"served_within_days": 90}}`: completed a shift, or has approved hours dated, within
the last N days. `{"volunteer": {"hours_over": 10}}`: more than N approved hours in all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select

from crm.errors import Invalid
from crm.volunteers.models import HoursStatus, Shift, ShiftSignup, SignupStatus, Volunteer, VolunteerHours

KEYS = ("served_within_days", "hours_over")


def _number(path: str, value: Any, fail: Callable[[str, str], Invalid], *, whole: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) or value < 0:
        raise fail(path, "must be a whole number of days, 0 or more" if whole else "must be a number, 0 or more")
    if value > 36500 * (24 if not whole else 1):
        raise fail(path, "is too large")
    return value


def conditions(path: str, arg: dict[str, Any], fail: Callable[[str, str], Invalid]) -> list[ColumnElement[bool]]:
    """The WHERE parts for these keys, correlated to the outer query's Volunteer row."""
    out: list[ColumnElement[bool]] = []
    if "served_within_days" in arg:
        days = _number(f"{path}.served_within_days", arg["served_within_days"], fail, whole=True)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        out.append(or_(
            exists().where(ShiftSignup.volunteer_id == Volunteer.id, ShiftSignup.status == SignupStatus.completed,
                           Shift.id == ShiftSignup.shift_id, Shift.ends_at >= since),
            exists().where(VolunteerHours.volunteer_id == Volunteer.id, VolunteerHours.status == HoursStatus.approved,
                           VolunteerHours.date >= since.date()),
        ))
    if "hours_over" in arg:
        limit = _number(f"{path}.hours_over", arg["hours_over"], fail, whole=False)
        total = (select(func.coalesce(func.sum(VolunteerHours.hours), 0))
                 .where(VolunteerHours.volunteer_id == Volunteer.id, VolunteerHours.status == HoursStatus.approved)
                 .correlate(Volunteer).scalar_subquery())
        out.append(total > limit)
    return out
