"""Checks for free text that ends up in an email header (names, subjects, anything single-line).

Any form, staff schema or service that accepts a single-line field calls `single_line` (raises
`Invalid` naming the field, a 400) or `single_line_problem` (returns why, for validators that
raise their own error, e.g. a pydantic `field_validator`). The mail package checks every built
header again after encoding (crm.mail.headers): this layer exists so the person typing gets a
clear answer instead of a message that is silently never sent.
"""

from __future__ import annotations

import re

from crm.errors import Invalid

# Everything str.splitlines() or the email package treats as the end of a line, plus NUL.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")
# An RFC 2047 encoded word: the email package decodes these when a header is parsed, so one
# carrying =0D=0A becomes a real line break after the raw-text check has passed.
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")


def has_line_break(value: str) -> bool:
    return not LINE_BREAKS.isdisjoint(value)


def single_line_problem(value: str) -> str | None:
    """Why `value` cannot be a single-line field, or None when it can."""
    if has_line_break(value):
        return "must be one line (no line breaks of any kind)"
    if ENCODED_WORD.search(value):
        return "must not contain RFC 2047 encoded words (=?charset?q?...?=)"
    return None


def single_line(value: str, field: str) -> str:
    """`value` unchanged, or Invalid (400) naming `field` and why."""
    problem = single_line_problem(value)
    if problem is not None:
        raise Invalid.field(field, problem)
    return value


_ADDRESS = re.compile(r"[^\s<>@\"',;:()\[\]]+@[A-Za-z0-9.-]+")


def redact_addresses(text: str) -> str:
    """`550 5.1.1 <bob@example.org> unknown` -> `550 5.1.1 <[address]> unknown`, for logs and stored errors."""
    return _ADDRESS.sub("[address]", text)
