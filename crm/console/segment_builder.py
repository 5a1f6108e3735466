"""The segment builder's form <-> the rule tree of SPEC section 6, with no web framework in it.

The builder is one HTML form that works without JavaScript: each node of the tree has a path
("r" the root group, "r-0" its first child, "r-0-2" ...) and its fields are named `<path>.<param>`
(checkboxes `<path>.<param>.<choice>`, so a form never repeats a name). A group is "all", "any"
or "none" ("none of these" is `not` over `any`, the way coordinators say it). A condition left
half-filled (an interest condition with no interest ticked) is named and left out of the count
instead of failing the whole tree, so adding a condition never blanks the count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm.contacts.models import Language, ListKey, Role
from crm.volunteers.models import Area, Availability, VolunteerStatus

ROOT = "r"
GROUPS = ("all", "any", "none")
MAX_NODES = 500

ROLE_LABELS = {"patient": "Patient", "caregiver": "Caregiver", "family": "Family member", "survivor": "Survivor",
               "professional": "Health professional", "supporter": "Supporter", "other": "Other"}
LIST_LABELS = {"newsletter": "Newsletter and content digest", "volunteer-updates": "Volunteering news",
               "donor-updates": "News for donors"}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
AREA_LABELS = {"transport-to-treatment": "Driving patients to treatment", "lodging-support": "Lodging support",
               "events": "Events", "peer-support": "Peer support", "office": "Office help",
               "advocacy": "Advocacy", "fundraising": "Fundraising"}
AVAILABILITY_LABELS = {"weekday-daytime": "Weekdays, daytime", "weekday-evenings": "Weekday evenings",
                       "weekends": "Weekends"}
VOLUNTEER_STATUS_LABELS = {"interested": "Interested", "contacted": "Contacted", "onboarding": "Onboarding",
                           "active": "Active", "paused": "Paused", "inactive": "Inactive"}
# What "Add" offers, in the order a coordinator looks for it.
KIND_LABELS = {"interest": "Interests", "role": "Role", "list": "Subscribed list", "language": "Language",
               "postal_code": "Postal code", "tag": "Tag", "signed_up": "Signed up", "volunteer": "Volunteer",
               "engaged": "Opened or clicked recently", "bereaved": "Bereaved (tribute or memorial inquiry)",
               "group": "A group of rules"}
CONDITIONS = tuple(k for k in KIND_LABELS if k != "group")
# Checkbox choices of each condition's pick lists; interests come from the taxonomy at run time.
FIXED_CHOICES = {"role": [r.value for r in Role], "list": [k.value for k in ListKey],
                 "language": [lang.value for lang in Language], "status": [s.value for s in VolunteerStatus],
                 "area": [a.value for a in Area], "availability": [a.value for a in Availability]}
PICKS = {"interest": ("pick",), "role": ("pick",), "list": ("pick",), "language": ("pick",),
         "volunteer": ("status", "area", "availability")}
TEXTS = {"interest": ("mode",), "tag": ("mode", "text"), "postal_code": ("mode", "text"),
         "signed_up": ("after", "before"), "volunteer": ("mode", "served_within_days", "hours_over"),
         "engaged": ("within_days",), "bereaved": ("value",)}
DEFAULTS = {"interest": {"mode": "any"}, "tag": {"mode": "any"}, "postal_code": {"mode": "prefix"},
            "volunteer": {"mode": "with"}, "engaged": {"within_days": "90"}, "bereaved": {"value": "yes"}}


@dataclass
class Node:
    path: str
    kind: str  # a group ("all" / "any" / "none") or a condition of CONDITIONS
    values: dict[str, Any] = field(default_factory=dict)  # text params, and sets of picked choices
    children: list[Node] = field(default_factory=list)
    error: str = ""

    @property
    def is_group(self) -> bool:
        return self.kind in GROUPS

    def picked(self, param: str) -> set[str]:
        return set(self.values.get(param) or ())

    def text(self, param: str) -> str:
        return self.kind if param == "type" else str(self.values.get(param) or "")


def new_condition(path: str, kind: str) -> Node:
    if kind == "group":
        return Node(path, "any")
    return Node(path, kind, dict(DEFAULTS.get(kind, {})))


def empty() -> Node:
    return Node(ROOT, "all")


# --- form -> nodes --------------------------------------------------------------------------------


def from_form(form: Mapping[str, Any]) -> Node:
    """The tree the form describes; unknown kinds and orphans are dropped, at most MAX_NODES nodes."""
    by_path: dict[str, dict[str, Any]] = {}
    for name, value in form.items():  # one pass: each node then reads only its own fields
        path, dot, rest = name.partition(".")
        if dot and _valid_path(path):
            by_path.setdefault(path, {})[rest] = value
    nodes: dict[str, Node] = {}
    for path in sorted((p for p, f in by_path.items() if "type" in f), key=_order)[:MAX_NODES]:
        fields = by_path[path]
        kind = str(fields["type"])
        if kind not in GROUPS and kind not in CONDITIONS:
            continue
        parent = path.rpartition("-")[0]
        if path != ROOT and (parent not in nodes or not nodes[parent].is_group):
            continue
        node = Node(path, kind, _values(fields, kind))
        nodes[path] = node
        if path != ROOT:
            nodes[parent].children.append(node)
    root = nodes.get(ROOT)
    return root if root is not None and root.is_group else empty()


def _valid_path(path: str) -> bool:
    head, *rest = path.split("-")
    return head == ROOT and len(rest) <= 25 and all(p.isdigit() and len(p) < 5 for p in rest)


def _order(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in path.split("-")[1:])


def _values(fields: Mapping[str, Any], kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in TEXTS.get(kind, ()):
        out[param] = str(fields.get(param, "")).strip()[:2000]
    for param in PICKS.get(kind, ()):
        prefix = f"{param}."
        out[param] = sorted(name[len(prefix):] for name, value in fields.items() if name.startswith(prefix) and value)
    return out


# --- nodes -> rules -------------------------------------------------------------------------------


def to_rules(root: Node) -> tuple[dict[str, Any], list[Node]]:
    """The rule tree, and the conditions left out because they are unfinished (each with its error)."""
    unfinished: list[Node] = []
    rules = _rule(root, unfinished)
    return (rules if rules is not None else {"all": []}), unfinished


def _rule(node: Node, unfinished: list[Node]) -> dict[str, Any] | None:
    node.error = ""
    if node.is_group:
        kids = [r for r in (_rule(c, unfinished) for c in node.children) if r is not None]
        if node.kind == "all":
            return {"all": kids} if kids or node.path == ROOT else None
        if not kids:
            return None
        if node.kind == "any":
            return {"any": kids}
        return {"not": kids[0] if len(kids) == 1 else {"any": kids}}
    try:
        return {node.kind: _CONDITION[node.kind](node)}
    except _Unfinished as exc:
        node.error = str(exc)
        unfinished.append(node)
        return None


class _Unfinished(Exception):
    pass


def _need(picked: list[str] | set[str], what: str) -> list[str]:
    if not picked:
        raise _Unfinished(f"Choose at least one {what}.")
    return sorted(picked)


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _words(text: str, what: str) -> list[str]:
    items = [w.strip() for w in text.replace("\n", ",").split(",") if w.strip()]
    if not items:
        raise _Unfinished(f"Type at least one {what}.")
    if any(len(w) > 200 for w in items):
        raise _Unfinished(f"Each {what} must be at most 200 characters.")
    return list(dict.fromkeys(items))


def _mode(node: Node, allowed: tuple[str, ...]) -> str:
    mode = node.text("mode")
    return mode if mode in allowed else allowed[0]


def _interest(node: Node) -> dict[str, Any]:
    return {_mode(node, ("any", "all", "none")): _need(node.picked("pick"), "interest")}


def _tag(node: Node) -> dict[str, Any]:
    return {_mode(node, ("any", "all", "none")): _words(node.text("text"), "tag")}


def _pick(what: str) -> Any:
    def build(node: Node) -> Any:
        return _one_or_many(_need(node.picked("pick"), what))
    return build


def _choice(what: str) -> Any:
    def build(node: Node) -> Any:
        values = _need(node.picked("pick"), what)
        return values[0] if len(values) == 1 else {"in": values}
    return build


def _postal(node: Node) -> dict[str, Any]:
    mode = _mode(node, ("prefix", "in"))
    return {mode: _one_or_many(_words(node.text("text"), "postal code" if mode == "in" else "start of a postal code"))}


def _date(text: str, what: str) -> str | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise _Unfinished(f"The {what} date must be a date such as 2026-01-31.") from None


def _signed_up(node: Node) -> dict[str, Any]:
    found = {k: v for k in ("after", "before") if (v := _date(node.text(k), "'" + k + "'"))}
    if not found:
        raise _Unfinished("Give an 'on or after' date, a 'before' date, or both.")
    return found


def _whole(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _Unfinished(f"{what} must be a whole number from {low} to {high}.") from None
    if not low <= value <= high:
        raise _Unfinished(f"{what} must be a whole number from {low} to {high}.")
    return value


def _volunteer(node: Node) -> Any:
    if _mode(node, ("with", "without")) == "without":
        return False
    out: dict[str, Any] = {}
    for param in ("status", "area", "availability"):
        if node.picked(param):
            out[param] = _one_or_many(sorted(node.picked(param)))
    if node.text("served_within_days"):
        out["served_within_days"] = _whole(node.text("served_within_days"), "Days since a shift", 1, 36500)
    if node.text("hours_over"):
        try:
            hours = float(node.text("hours_over"))
        except ValueError:
            raise _Unfinished("Hours must be a number, 0 or more.") from None
        if not 0 <= hours <= 876000:
            raise _Unfinished("Hours must be a number, 0 or more.")
        out["hours_over"] = int(hours) if hours.is_integer() else hours
    return out or True


def _engaged(node: Node) -> dict[str, Any]:
    return {"within_days": _whole(node.text("within_days"), "Days", 1, 3650)}


def _bereaved(node: Node) -> bool:
    return node.text("value") != "no"


_CONDITION = {"interest": _interest, "tag": _tag, "role": _choice("role"), "language": _choice("language"),
              "list": _pick("list"), "postal_code": _postal, "signed_up": _signed_up, "volunteer": _volunteer,
              "engaged": _engaged, "bereaved": _bereaved}


# --- rules -> nodes (opening a saved segment) -----------------------------------------------------


def from_rules(rules: dict[str, Any] | None) -> Node:
    """The builder's tree for a saved (already validated) rule tree; the root is always a group.

    A condition with several keys at once (interest any + none, postal prefix + in) becomes an
    "all" group of one-key conditions: the same contacts, in the builder's one-mode-per-row shape.
    """
    if not rules:
        return empty()
    node = _node(rules, ROOT)
    if not node.is_group:
        return Node(ROOT, "all", children=[_repath(node, f"{ROOT}-0")])
    return node


def _repath(node: Node, path: str) -> Node:
    node.path = path
    for i, child in enumerate(node.children):
        _repath(child, f"{path}-{i}")
    return node


def _group(kind: str, rules: list[Any], path: str) -> Node:
    return Node(path, kind, children=[_node(r, f"{path}-{i}") for i, r in enumerate(rules)])


def _listed(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("in", [])
    return [value] if isinstance(value, str) else list(value)


def _text(value: Any) -> str:
    return ", ".join(_listed(value))


def _node(rule: dict[str, Any], path: str) -> Node:  # noqa: C901 - one branch per kind of SPEC 6
    ((op, arg),) = rule.items()
    if op in ("all", "any"):
        return _group(op, arg, path)
    if op == "not":
        inner = arg["any"] if isinstance(arg, dict) and list(arg) == ["any"] else [arg]
        return _group("none", inner, path)
    if op in ("interest", "tag", "postal_code"):
        modes = {"any": arg} if isinstance(arg, str | list) else dict(arg)
        if len(modes) > 1:
            return _group("all", [{op: {m: v}} for m, v in modes.items()], path)
        ((mode, value),) = modes.items()
        if op == "interest":
            return Node(path, op, {"mode": mode, "pick": _listed(value)})
        return Node(path, op, {"mode": mode, "text": _text(value)})
    if op in ("role", "language", "list"):
        return Node(path, op, {"pick": _listed(arg)})
    if op == "signed_up":
        return Node(path, op, {"after": str(arg.get("after", ""))[:10], "before": str(arg.get("before", ""))[:10]})
    if op == "volunteer":
        if isinstance(arg, bool):
            return Node(path, op, {"mode": "with" if arg else "without"})
        values: dict[str, Any] = {"mode": "with", **{p: _listed(arg[p]) for p in ("status", "area", "availability")
                                                      if p in arg}}
        values.update({k: str(arg[k]) for k in ("served_within_days", "hours_over") if k in arg})
        return Node(path, op, values)
    if op == "engaged":
        return Node(path, op, {"within_days": str(arg.get("within_days", ""))})
    if op == "bereaved":
        return Node(path, op, {"value": "yes" if arg else "no"})
    raise ValueError(f"unknown rule {op!r}")  # validate_rules refused it before it was saved


# --- the builder's buttons ------------------------------------------------------------------------


def apply(root: Node, action: str, form: Mapping[str, Any]) -> str | None:
    """Run "add:<group path>" (the kind from that group's "Add" choice) or "remove:<path>".

    Returns the path of the node added (to put the focus there), else None.
    """
    verb, _, path = action.partition(":")
    if verb == "add":
        group = find(root, path)
        kind = str(form.get(f"{path}.add", ""))
        if group is None or not group.is_group or kind not in KIND_LABELS or count_nodes(root) >= MAX_NODES:
            return None
        used = [int(c.path.rsplit("-", 1)[1]) for c in group.children]
        child = new_condition(f"{path}-{max(used, default=-1) + 1}", kind)
        group.children.append(child)
        return child.path
    if verb == "remove" and path != ROOT:
        parent = find(root, path.rpartition("-")[0])
        if parent is not None:
            parent.children = [c for c in parent.children if c.path != path]
    return None


def find(node: Node, path: str) -> Node | None:
    if node.path == path:
        return node
    for child in node.children:
        if path == child.path or path.startswith(child.path + "-"):
            return find(child, path)
    return None


def count_nodes(node: Node) -> int:
    return 1 + sum(count_nodes(c) for c in node.children)
