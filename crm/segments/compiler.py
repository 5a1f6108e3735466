"""Segments' rule trees compiled to one SQL condition over Contact (SPEC section 6).

- validate_rules(rules) raises Invalid naming an unknown operator or key (with its path);
- compile_rules(rules) -> a boolean SQL expression over Contact;
- audience(rules, list_key) -> SELECT Contact.id ... passing the one mailing gate;
- driven_count / count_with_mailable -> the counts, from link-table indexes where the tree allows.

Every condition becomes a column test on Contact or a correlated EXISTS on a link table,
so the whole tree is one WHERE clause the database plans as semi/anti joins: nothing is
ever filtered in Python, and a count over a million contacts stays one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, true

from crm.contacts.gate import mailable_audience
from crm.contacts.models import (
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Language,
    ListKey,
    MailableInterest,
    MailableSubscription,
    Role,
    Subscription,
    SubscriptionState,
)
from crm.db import utcnow
from crm.errors import Invalid
from crm.volunteers import segment_conditions as volunteer_work
from crm.volunteers.models import (
    Area,
    Availability,
    Volunteer,
    VolunteerArea,
    VolunteerAvailability,
    VolunteerStatus,
)

OPERATORS = ("all", "any", "not")
CONDITIONS = ("interest", "role", "list", "language", "postal_code", "tag", "signed_up", "volunteer", "engaged",
              "bereaved")
SAMPLE_SIZE = 10
MAX_DEPTH = 20
MAX_NODES = 500


class _NeedsContactRow(Exception):
    """A condition reads a Contact column, so the query cannot be driven from a link table alone."""


class _Compiler:
    """One pass over the tree: validates (naming the path of what is wrong) and builds SQL.

    `subject` is the contact id every link-table EXISTS correlates with: Contact.id normally, or a
    link table's contact_id when count() drives the query from that table's index.
    """

    def __init__(self, known_interests: Collection[str] | None, subject: Any = None,
                 gate_list: str | None = None) -> None:
        self.known_interests = set(known_interests) if known_interests is not None else None
        self.subject = Contact.id if subject is None else subject
        self.link_only = subject is not None
        # Set when every subject already passes this list's gate: interests are then read from
        # mailable_interest, the same answer from the short ranges of the list's mailable readers.
        self.gate_list = gate_list
        self.nodes = 0

    @property
    def row(self) -> type[Contact]:
        if self.link_only:
            raise _NeedsContactRow
        return Contact

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def fail(path: str, reason: str) -> Invalid:
        return Invalid.field(path, reason)

    def keys(self, path: str, arg: Any, allowed: tuple[str, ...], *, required: bool = True) -> dict[str, Any]:
        if not isinstance(arg, dict):
            raise self.fail(path, f"must be an object with {' / '.join(allowed)}")
        for key in arg:
            if key not in allowed:
                raise self.fail(f"{path}.{key}", f"unknown key; expected one of {', '.join(allowed)}")
        if required and not arg:
            raise self.fail(path, f"must name at least one of {', '.join(allowed)}")
        return arg

    def strings(self, path: str, value: Any, choices: Collection[str] | None = None, *,
                what: str = "value") -> list[str]:
        """A string or a non-empty list of strings, each checked against `choices` when given."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
            raise self.fail(path, f"must be a {what} or a non-empty list of them")
        if choices is not None:
            unknown = [v for v in items if v not in choices]
            if unknown:
                raise self.fail(path, f"unknown {what} {', '.join(repr(v) for v in unknown)}; "
                                      f"expected one of {', '.join(sorted(choices))}")
        if any(len(v) > 200 for v in items):
            raise self.fail(path, "values must be at most 200 characters")
        return list(dict.fromkeys(items))

    @staticmethod
    def in_or_eq(column: Any, values: list[str]) -> ColumnElement[bool]:
        return column == values[0] if len(values) == 1 else column.in_(values)

    # --- the tree -----------------------------------------------------------------------------

    def node(self, rule: Any, path: str, depth: int = 0) -> ColumnElement[bool]:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise self.fail(path, f"rule tree too large (at most {MAX_DEPTH} levels and {MAX_NODES} rules)")
        if not isinstance(rule, dict) or len(rule) != 1:
            raise self.fail(path, "must be an object with exactly one operator or condition")
        ((op, arg),) = rule.items()
        here = f"{path}.{op}"
        if op in ("all", "any"):
            if not isinstance(arg, list):
                raise self.fail(here, "must be a list of rules")
            if op == "any" and not arg:
                raise self.fail(here, "must list at least one rule")
            parts = [self.node(r, f"{here}[{i}]", depth + 1) for i, r in enumerate(arg)]
            if not parts:
                return true()
            if len(parts) == 1:
                return parts[0]
            return and_(*parts) if op == "all" else or_(*parts)
        if op == "not":
            return not_(self.node(arg, here, depth + 1))
        handler: Callable[[str, Any], ColumnElement[bool]] | None = getattr(self, f"c_{op}", None)
        if op not in CONDITIONS or handler is None:
            raise self.fail(here, f"unknown operator or condition; expected one of "
                                  f"{', '.join(OPERATORS + CONDITIONS)}")
        return handler(here, arg)

    # --- conditions ---------------------------------------------------------------------------

    def _link_sets(self, path: str, arg: Any, column: Any, contact_col: Any,
                   choices: Collection[str] | None, what: str,
                   also: tuple[ColumnElement[bool], ...] = ()) -> ColumnElement[bool]:
        """interest / tag: {"any"|"all"|"none": [..]} (several keys AND together), or a bare value (= any)."""
        if isinstance(arg, (str, list)):
            arg = {"any": arg}
        arg = self.keys(path, arg, ("any", "all", "none"))
        parts: list[ColumnElement[bool]] = []
        for mode, raw in arg.items():
            values = self.strings(f"{path}.{mode}", raw, choices, what=what)
            if mode == "all":
                parts.extend(exists().where(contact_col == self.subject, column == v, *also) for v in values)
            else:
                hit = exists().where(contact_col == self.subject, self.in_or_eq(column, values), *also)
                parts.append(hit if mode == "any" else ~hit)
        return and_(*parts) if len(parts) > 1 else parts[0]

    def c_interest(self, path: str, arg: Any) -> ColumnElement[bool]:
        if self.gate_list is not None:
            return self._link_sets(path, arg, MailableInterest.interest_key, MailableInterest.contact_id,
                                   self.known_interests, "interest", (MailableInterest.list == self.gate_list,))
        return self._link_sets(path, arg, ContactInterest.interest_key, ContactInterest.contact_id,
                               self.known_interests, "interest")

    def c_tag(self, path: str, arg: Any) -> ColumnElement[bool]:
        return self._link_sets(path, arg, ContactTag.tag, ContactTag.contact_id, None, "tag")

    def _choice(self, path: str, arg: Any, column: Any, choices: Collection[str], what: str) -> ColumnElement[bool]:
        """role / language: a value or {"in": [..]}."""
        if isinstance(arg, dict):
            arg = self.keys(path, arg, ("in",))["in"]
            path = f"{path}.in"
        return self.in_or_eq(column, self.strings(path, arg, choices, what=what))

    def c_role(self, path: str, arg: Any) -> ColumnElement[bool]:
        return self._choice(path, arg, self.row.role, [r.value for r in Role], "role")

    def c_language(self, path: str, arg: Any) -> ColumnElement[bool]:
        return self._choice(path, arg, self.row.language, [lang.value for lang in Language], "language")

    def c_list(self, path: str, arg: Any) -> ColumnElement[bool]:
        lists = self.strings(path, arg, [k.value for k in ListKey], what="list")
        return exists().where(Subscription.contact_id == self.subject, self.in_or_eq(Subscription.list, lists),
                              Subscription.state == SubscriptionState.confirmed)

    def c_postal_code(self, path: str, arg: Any) -> ColumnElement[bool]:
        arg = self.keys(path, arg, ("prefix", "in"))
        parts: list[ColumnElement[bool]] = []
        if "prefix" in arg:
            prefixes = [p.strip() for p in self.strings(f"{path}.prefix", arg["prefix"], what="prefix")]
            parts.append(or_(*(self.row.postal_code.startswith(p, autoescape=True) for p in prefixes)))
        if "in" in arg:
            codes = [c.strip() for c in self.strings(f"{path}.in", arg["in"], what="postal code")]
            parts.append(self.in_or_eq(self.row.postal_code, codes))
        return and_(*parts) if len(parts) > 1 else parts[0]

    def _when(self, path: str, value: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise self.fail(path, "must be a date (YYYY-MM-DD) or an ISO 8601 date-time")
        try:
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise self.fail(path, "must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

    def c_signed_up(self, path: str, arg: Any) -> ColumnElement[bool]:
        # "after" is inclusive of that moment, "before" exclusive: after 2026-01-01 means from its midnight on.
        arg = self.keys(path, arg, ("after", "before"))
        parts: list[ColumnElement[bool]] = []
        if "after" in arg:
            parts.append(self.row.created_at >= self._when(f"{path}.after", arg["after"]))
        if "before" in arg:
            parts.append(self.row.created_at < self._when(f"{path}.before", arg["before"]))
        return and_(*parts) if len(parts) > 1 else parts[0]

    def c_volunteer(self, path: str, arg: Any) -> ColumnElement[bool]:
        """{"area", "availability", "status"} all must hold on the contact's volunteer profile; true/false: has one."""
        if isinstance(arg, bool):
            has = exists().where(Volunteer.contact_id == self.subject)
            return has if arg else ~has
        arg = self.keys(path, arg, ("area", "availability", "status", *volunteer_work.KEYS), required=False)
        where: list[ColumnElement[bool]] = [Volunteer.contact_id == self.subject,
                                            *volunteer_work.conditions(path, arg, self.fail)]
        if "status" in arg:
            statuses = self.strings(f"{path}.status", arg["status"], [s.value for s in VolunteerStatus], what="status")
            where.append(self.in_or_eq(Volunteer.status, statuses))
        if "area" in arg:
            areas = self.strings(f"{path}.area", arg["area"], [a.value for a in Area], what="area")
            where.append(exists().where(VolunteerArea.volunteer_id == Volunteer.id,
                                        self.in_or_eq(VolunteerArea.area, areas)))
        if "availability" in arg:
            slots = self.strings(f"{path}.availability", arg["availability"], [a.value for a in Availability],
                                 what="availability")
            where.append(exists().where(VolunteerAvailability.volunteer_id == Volunteer.id,
                                        self.in_or_eq(VolunteerAvailability.slot, slots)))
        return exists().where(*where)

    def c_engaged(self, path: str, arg: Any) -> ColumnElement[bool]:
        """Opened or clicked any campaign or digest within the last N days.

        Tracking (crm.campaigns.tracking) stamps the contact's last_engaged_at with every open and
        click it stamps on a delivery, so the one indexed column answers without scanning deliveries.
        """
        arg = self.keys(path, arg, ("within_days",))
        days = arg["within_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise self.fail(f"{path}.within_days", "must be a whole number of days from 1 to 3650")
        return self.row.last_engaged_at >= utcnow() - dt.timedelta(days=days)

    def c_bereaved(self, path: str, arg: Any) -> ColumnElement[bool]:
        if not isinstance(arg, bool):
            raise self.fail(path, "must be true or false")
        return self.row.bereaved.is_(True) if arg else self.row.bereaved.is_(False)


def compile_rules(rules: dict[str, Any] | None, known_interests: Collection[str] | None = None,
                  path: str = "rules") -> ColumnElement[bool]:
    """The rule tree as one boolean SQL expression over Contact; an empty tree matches everyone.

    `known_interests`, when given, makes an interest key outside the taxonomy a 400 too.
    """
    if rules is None or rules == {}:
        return true()
    return _Compiler(known_interests).node(rules, path)


def validate_rules(rules: dict[str, Any] | None, known_interests: Collection[str] | None = None,
                   path: str = "rules") -> None:
    compile_rules(rules, known_interests, path)


def audience(rules: dict[str, Any] | None, list_key: str) -> Select[tuple[int]]:
    return select(Contact.id).where(compile_rules(rules), mailable_audience(list_key))


def matching(rules: dict[str, Any] | None, list_key: str | None = None,
             known_interests: Collection[str] | None = None) -> ColumnElement[bool]:
    """Who a count or preview shows: the rules over every contact not erased, or through the gate of a list."""
    gate = mailable_audience(list_key) if list_key else Contact.status != ContactStatus.erased
    return and_(compile_rules(rules, known_interests), gate)


def count_with_mailable(rules: dict[str, Any] | None, list_key: str) -> Select[tuple[int, int]]:
    """(everyone matching, of whom mailable on list_key) in one pass over Contact.

    For trees no index can drive: the raw and the gated count would each scan the contact table,
    so the gate is an outer join counted beside (its key makes it at most one row per contact).
    """
    gate = MailableSubscription.__table__.alias("gate")  # type: ignore[attr-defined]
    return (select(func.count(), func.count(gate.c.contact_id)).select_from(Contact)
            .outerjoin(gate, and_(gate.c.contact_id == Contact.id, gate.c.list == list_key))
            .where(matching(rules)))


def _one_key(rule: Any) -> tuple[str, str, Any] | None:
    """A conjunct that requires one interest, tag or list: (op, that key, the rest of the rule or None)."""
    if not isinstance(rule, dict) or len(rule) != 1:
        return None
    ((op, arg),) = rule.items()
    if op == "list" and isinstance(arg, str):
        return op, arg, None
    if op not in ("interest", "tag"):
        return None
    if isinstance(arg, str | list):
        arg = {"any": arg}
    modes = {m: ([v] if isinstance(v, str) else v) for m, v in arg.items()}
    for mode in ("all", "any"):
        values = modes.get(mode)
        if values and (mode == "all" or len(values) == 1):
            remaining = {m: v for m, v in modes.items() if m != mode}
            if mode == "all" and len(values) > 1:
                remaining["all"] = values[1:]
            return op, values[0], {op: remaining} if remaining else None
    return None


def _driver(rule: Any) -> tuple[Any, list[ColumnElement[bool]], Any, Any] | None:
    """A conjunct that names one interest, tag or list: (link alias, its WHERE, contact_id, what remains)."""
    found = _one_key(rule)
    if found is None:
        return None
    op, key, remaining = found
    # Core table aliases, not ORM aliased(): this runs on every count and must stay cheap.
    if op == "list":
        sub = Subscription.__table__.alias("driver")  # type: ignore[attr-defined]
        return sub, [sub.c.list == key, sub.c.state == SubscriptionState.confirmed], sub.c.contact_id, None
    link = (ContactInterest if op == "interest" else ContactTag).__table__.alias("driver")  # type: ignore[attr-defined]
    column = link.c.interest_key if op == "interest" else link.c.tag
    return link, [column == key], link.c.contact_id, remaining


def driven_count(rules: Any, list_key: str | None = None) -> Select[tuple[int]] | None:
    """The count of a tree made only of link-table conditions, read from link tables' indexes.

    Through a list's gate the rows to count come straight from `mailable_interest` (the list's
    mailable readers of the first interest the tree requires) or `mailable_subscription` (the
    erased are in neither), and the tree's other interests are read from `mailable_interest` too;
    otherwise the first positive single-key interest/tag/list conjunct
    picks them from its (key, contact_id) index and the erased are removed by an anti-join on
    their (small) set. Other conjuncts correlate with that row's contact_id. This never touches
    the wide contact table, which a million-contact scan otherwise must.
    """
    if rules is None or rules == {}:
        conjuncts = []
    else:
        conjuncts = rules["all"] if isinstance(rules, dict) and list(rules) == ["all"] else [rules]
    if list_key is not None:
        return _gated_count(conjuncts, list_key)
    for i, rule in enumerate(conjuncts):
        found = _driver(rule)
        if found is None:
            continue
        link, where, subject, remaining = found
        rest = [r for j, r in enumerate(conjuncts) if j != i] + ([remaining] if remaining else [])
        return _link_count(link, where, subject, rest, erased_possible=True)
    return None


def _gated_count(conjuncts: list[Any], list_key: str) -> Select[tuple[int]] | None:
    """Through a list's gate: from the list's mailable readers of the first interest the tree
    requires (mailable_interest), or else from the list's whole mailable set."""
    for i, rule in enumerate(conjuncts):
        found = _one_key(rule)
        if found is None or found[0] != "interest":
            continue
        _, key, remaining = found
        driver = MailableInterest.__table__.alias("driver")  # type: ignore[attr-defined]
        rest = [r for j, r in enumerate(conjuncts) if j != i] + ([remaining] if remaining else [])
        return _link_count(driver, [driver.c.list == list_key, driver.c.interest_key == key],
                           driver.c.contact_id, rest, erased_possible=False, gate_list=list_key)
    gate = MailableSubscription.__table__.alias("driver")  # type: ignore[attr-defined]
    return _link_count(gate, [gate.c.list == list_key], gate.c.contact_id, conjuncts, erased_possible=False,
                       gate_list=list_key)


def _link_count(link: Any, where: list[ColumnElement[bool]], subject: Any, rest: list[Any], *,
                erased_possible: bool, gate_list: str | None = None) -> Select[tuple[int]] | None:
    compiler = _Compiler(None, subject=subject, gate_list=gate_list)
    try:
        parts = [compiler.node(r, "rules") for r in rest]
    except _NeedsContactRow:
        return None
    if erased_possible:
        erased = Contact.__table__.alias("erased")  # type: ignore[attr-defined]
        parts.append(~exists().where(erased.c.id == subject, erased.c.status == ContactStatus.erased))
    return select(func.count()).select_from(link).where(*where, *parts)
