"""Keep link tokens out of logs: every path a signed link reaches has its token replaced by <token>.

A token in an unsubscribe or preferences URL is the key to a person's page; an access log that
keeps them hands those keys to anyone who can read the log.
"""

from __future__ import annotations

import logging
import re

# Every route with a signed token in its path (grep crm/*/routes.py for "{token"), plus the
# volunteer pages' prefixes, which take a token the same way.
TOKEN_PREFIXES = (
    "/api/v1/preferences/", "/api/v1/volunteer-portal/", "/confirm/", "/preferences/", "/unsubscribe/",
    "/volunteer/", "/respond/", "/track/open/", "/track/click/", "/t/", "/r/",
)
_PATH = re.compile(r"(?P<prefix>" + "|".join(re.escape(p) for p in TOKEN_PREFIXES) + r")[^/?#\s\"]+")
_QUERY = re.compile(r"(?P<key>[?&](?:token|t)=)[^&#\s\"]+", re.IGNORECASE)
REDACTED = "<token>"


def redact(text: str) -> str:
    """`text` with the token after each token route, and any `token=` query value, replaced."""
    text = _PATH.sub(lambda m: m.group("prefix") + REDACTED, text)
    return _QUERY.sub(lambda m: m.group("key") + REDACTED, text)


class TokenRedactingFilter(logging.Filter):
    """Rewrites a record's message and string arguments (uvicorn passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install(logger_names: tuple[str, ...] = ("uvicorn.access",)) -> None:
    """Add the filter once to each named logger (idempotent, so `crm run` and asgi may both call it)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())
