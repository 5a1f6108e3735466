"""Segments: a JSON rule tree compiled to one SQL condition over Contact (SPEC section 6).

Interface the rest of the code relies on (the segments issue fills in every condition):
- validate_rules(rules) raises Invalid naming an unknown operator or key;
- compile_rules(rules) -> a boolean SQL expression over Contact;
- audience(rules, list_key) -> SELECT Contact.id ... passing the one mailing gate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, not_, or_, select, true

from crm.contacts.models import Contact, ContactInterest
from crm.contacts.service import mailable
from crm.errors import Invalid


def compile_rules(rules: dict[str, Any] | None) -> ColumnElement[bool]:
    if not rules:
        return true()
    if not isinstance(rules, dict) or len(rules) != 1:
        raise Invalid.field("rules", "each node must be an object with exactly one operator or condition")
    (op, arg), = rules.items()
    if op == "all":
        return and_(true(), *(compile_rules(r) for r in arg))
    if op == "any":
        return or_(*(compile_rules(r) for r in arg))
    if op == "not":
        return not_(compile_rules(arg))
    if op == "interest" and isinstance(arg, dict) and "any" in arg:
        return exists().where(ContactInterest.contact_id == Contact.id, ContactInterest.interest_key.in_(arg["any"]))
    raise Invalid.field("rules", f"unknown operator or condition {op!r}")


def validate_rules(rules: dict[str, Any] | None) -> None:
    compile_rules(rules)


def audience(rules: dict[str, Any] | None, list_key: str) -> Select[tuple[int]]:
    return select(Contact.id).where(compile_rules(rules), mailable(list_key))
