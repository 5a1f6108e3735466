"""The builder's form <-> rule tree conversion, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from crm.console import segment_builder as b
from crm.segments.service import validate_rules

SPEC_EXAMPLE: dict[str, Any] = {"all": [
    {"interest": {"any": ["tobacco-cessation", "cancer-information"]}},
    {"role": {"in": ["caregiver", "family"]}},
    {"list": "newsletter"},
    {"language": "es"},
    {"postal_code": {"prefix": "303"}},
    {"signed_up": {"after": "2026-01-01"}},
    {"volunteer": {"area": "transport-to-treatment", "availability": "weekends"}},
    {"not": {"tag": "board-member"}},
    {"any": [{"tag": {"any": ["gala-2026"]}}, {"engaged": {"within_days": 90}}]},
    {"volunteer": {"served_within_days": 30, "hours_over": 10, "status": ["active", "paused"]}},
    {"volunteer": False},
    {"bereaved": True},
    {"not": {"any": [{"language": "en"}, {"signed_up": {"before": "2020-05-01"}}]}},
]}


def _form_of(node: b.Node) -> dict[str, str]:
    """What a browser would post for the builder drawn from `node`."""
    out = {f"{node.path}.type": node.kind}
    for param, value in node.values.items():
        if isinstance(value, list):
            out.update({f"{node.path}.{param}.{v}": "1" for v in value})
        else:
            out[f"{node.path}.{param}"] = value
    for child in node.children:
        out.update(_form_of(child))
    return out


def test_every_spec_condition_survives_rules_to_form_to_rules():
    validate_rules(SPEC_EXAMPLE)
    back, unfinished = b.to_rules(b.from_form(_form_of(b.from_rules(SPEC_EXAMPLE))))
    assert unfinished == []
    validate_rules(back)
    again, _ = b.to_rules(b.from_form(_form_of(b.from_rules(back))))
    assert again == back  # the second trip is exact
    kinds = {next(iter(r)) for r in back["all"]}
    assert kinds == {"interest", "role", "list", "language", "postal_code", "signed_up", "volunteer", "not", "any",
                     "bereaved"}
    assert {"interest": {"any": ["cancer-information", "tobacco-cessation"]}} in back["all"]
    assert {"not": {"tag": {"any": ["board-member"]}}} in back["all"]
    assert {"volunteer": False} in back["all"]
    assert {"volunteer": {"status": ["active", "paused"], "served_within_days": 30, "hours_over": 10}} in back["all"]


def test_a_condition_with_two_modes_opens_as_a_group_of_the_same_meaning():
    rules = {"interest": {"any": ["caregiving"], "none": ["donations"]}}
    node = b.from_rules(rules)
    assert node.kind == "all" and [c.kind for c in node.children] == ["interest", "interest"]
    assert [c.values["mode"] for c in node.children] == ["any", "none"]
    back, _ = b.to_rules(node)
    assert back == {"all": [{"interest": {"any": ["caregiving"]}}, {"interest": {"none": ["donations"]}}]}


def test_unfinished_rules_are_left_out_and_named():
    form = {"r.type": "all", "r-0.type": "interest", "r-0.mode": "any", "r-1.type": "engaged",
            "r-1.within_days": "ninety", "r-2.type": "tag", "r-2.text": "gala"}
    rules, unfinished = b.to_rules(b.from_form(form))
    assert rules == {"all": [{"tag": {"any": ["gala"]}}]}
    assert [n.path for n in unfinished] == ["r-0", "r-1"]
    assert "interest" in unfinished[0].error and "whole number" in unfinished[1].error


@pytest.mark.parametrize(("action", "expect"), [("add:r", ["r-0", "r-1", "r-2"]), ("remove:r-0", ["r-1"])])
def test_add_and_remove(action, expect):
    root = b.from_form({"r.type": "any", "r-0.type": "bereaved", "r-1.type": "bereaved", "r.add": "tag"})
    added = b.apply(root, action, {"r.add": "tag"})
    assert [c.path for c in root.children] == expect
    if action.startswith("add"):
        assert added == "r-2" and root.children[-1].kind == "tag"


def test_a_forged_form_cannot_build_orphans_or_unknown_kinds():
    form = {"r.type": "all", "r-0-0.type": "tag", "r-1.type": "drop table", "x.type": "all", "r-2.type": "any"}
    root = b.from_form(form)
    assert [c.path for c in root.children] == ["r-2"]
    assert b.to_rules(root)[0] == {"all": []}  # an empty nested group adds nothing
