"""Typed request bodies, handed to services as the fields the client sent."""

from __future__ import annotations

from typing import Any

import msgspec


def present(body: msgspec.Struct) -> dict[str, Any]:
    """The fields the client sent: a PATCH's absent field (UNSET) is left out, an explicit null is kept."""
    return {name: value for name, value in msgspec.structs.asdict(body).items() if value is not msgspec.UNSET}
