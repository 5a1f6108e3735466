"""Slot markers: render once with a marker where each personal value goes, then cut and fill per person."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class _Slots:
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    keys: list[str] = field(default_factory=list)

    def slot(self, key: str) -> str:
        self.keys.append(key)
        return f"crmslot{self.nonce}x{len(self.keys) - 1}y"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(f"crmslot{self.nonce}x(\\d+)y")


class _Cut:
    """A rendered string cut at its slots: even entries literal, odd entries slot keys."""

    def __init__(self, rendered: str, slots: _Slots) -> None:
        pieces = slots.pattern().split(rendered)
        self.parts = [p if i % 2 == 0 else slots.keys[int(p)] for i, p in enumerate(pieces)]

    def fill(self, values: Mapping[str, str]) -> str:
        parts = self.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out)
