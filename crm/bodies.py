"""Typed request bodies, handed to services as the fields the client sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def present(body: msgspec.Struct | Mapping[str, Any]) -> dict[str, Any]:
    """The fields the client sent: a PATCH's absent field (UNSET) is left out, an explicit null is kept.

    A plain mapping (the demo loader, tests and benches call services from Python) passes as it is;
    the service's checks of meaning still apply to it.
    """
    if isinstance(body, Mapping):
        return dict(body)
    return {name: value for name, value in msgspec.structs.asdict(body).items() if value is not msgspec.UNSET}


def shaped(kind: type[T], value: Any) -> T:
    """A serializer's dict as the documented response type: a field that drifted from its schema
    fails here, in the tests, instead of reaching a client undocumented."""
    return msgspec.convert(value, kind)
