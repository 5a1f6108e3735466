"""Every header of every message passes here: built, then checked after encoding.

The raw-text check (`safe_header`) is not enough on its own: the email package decodes RFC 2047
encoded words when a header value is assigned, so `=?utf-8?q?x=0D=0ABcc:_a@b?=` turns into a real
line after it was checked (CVE-2024-6923, fixed in Python 3.11.10 / 3.12.5 by
`verify_generated_headers`). So `check_head` reads the header block as it will go on the wire and
refuses it unless it holds exactly the headers the builder set, each line at most 998 octets.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from email import policy as email_policy
from email.utils import format_datetime, formataddr, parseaddr
from zoneinfo import ZoneInfo

from crm.errors import Invalid
from crm.text import ENCODED_WORD, has_line_break

log = logging.getLogger("crm.mail")
MAX_LINE = 998  # RFC 5322 2.1.1, without the CRLF
PATCHED_PYTHON = "Python >= 3.11.10 or >= 3.12.5"


class HeaderInjection(Invalid, ValueError):
    """A header value would add or break a line: the message is refused, never sent."""


def has_header_verification() -> bool:
    return hasattr(email_policy.default, "verify_generated_headers")


def smtp_policy() -> email_policy.EmailPolicy:
    if has_header_verification():
        return email_policy.SMTP.clone(verify_generated_headers=True)  # type: ignore[call-arg]
    return email_policy.SMTP


def warn_if_unpatched_python() -> None:
    if not has_header_verification():
        log.warning("this Python lacks email.policy verify_generated_headers (CVE-2024-6923); run %s. "
                    "crm still checks every generated header itself.", PATCHED_PYTHON)


def safe_header(value: str, name: str = "header") -> str:
    """Refuse any line break (CR, LF, U+2028, VT, FF, NEL, ...) in what becomes a header."""
    if has_line_break(value):
        raise HeaderInjection(f"{name} must not contain line breaks", fields={name: "must not contain line breaks"})
    return value


def safe_user_header(value: str, name: str) -> str:
    """A header built from user text: no line breaks and no encoded words to be decoded into some."""
    safe_header(value, name)
    if ENCODED_WORD.search(value):
        raise HeaderInjection(f"{name} must not contain RFC 2047 encoded words",
                              fields={name: "must not contain RFC 2047 encoded words"})
    return value


def encode_address(mail_from: str, name: str = "From") -> str:
    """`Name <addr>` with a non-ASCII name RFC 2047-encoded, as every message's From needs."""
    safe_header(mail_from, name)
    display, addr = parseaddr(mail_from)
    if not addr:
        raise HeaderInjection(f"{name} has no address", fields={name: "has no address"})
    return formataddr((display, addr), charset="utf-8") if display else addr


def message_date(timezone: str, now: dt.datetime | None = None) -> str:
    """An RFC 5322 Date with a real zone offset (never -0000), in CRM_TIMEZONE."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    return format_datetime(moment.astimezone(ZoneInfo(timezone)))


def head_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data if end < 0 else data[:end]


def check_head(data: bytes, expected: Iterable[str]) -> None:
    """Refuse a message unless its top-level header names are exactly `expected` (once each).

    `data` is the whole message or its header block, as it goes on the wire.
    """
    names: Counter[str] = Counter()
    for line in head_of(data).split(b"\n"):
        line = line.rstrip(b"\r")
        if len(line) > MAX_LINE:
            raise HeaderInjection("a header line is longer than 998 octets",
                                  fields={"header": "line longer than 998 octets"})
        if not line or line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the header above
        name, sep, _ = line.partition(b":")
        if not sep:
            raise HeaderInjection("a header line has no name", fields={"header": "broken header line"})
        names[name.decode("ascii", "replace").strip().lower()] += 1
    want = Counter(n.lower() for n in expected)
    if names != want:
        extra = sorted((names - want).elements())
        missing = sorted((want - names).elements())
        raise HeaderInjection(f"message headers differ from those built (extra {extra}, missing {missing})",
                              fields={"header": f"unexpected headers {extra}" if extra else "headers lost"})
