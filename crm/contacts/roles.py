"""Role addresses (info@, admin@, noreply@, ...): a team's or a machine's inbox, not a person's (SPEC 14).

Mail to them is read by whoever is on duty, who never asked for it: they complain and bounce more,
and consent given "for" one is nobody's. The list is kept data, not typed here:
role_addresses.txt comes from the maintained npm package role-based-email-addresses (see its
header and scripts/role_addresses.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

LIST_FILE = Path(__file__).with_name("role_addresses.txt")


@lru_cache(maxsize=1)
def role_prefixes() -> frozenset[str]:
    lines = LIST_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def is_role_address(address: str) -> bool:
    """info@x.org, Info+news@x.org, no-reply@x.org: yes; ana.garcia@x.org: no."""
    local = address.rpartition("@")[0].strip().lower()
    return local.split("+", 1)[0] in role_prefixes()


def role_conflict_message(address: str) -> str:
    return (f"{address} is a role address (a team's or a system's inbox, not a person's); "
            'send "confirm_role_address": true to add it to a list anyway')
