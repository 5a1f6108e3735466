"""Domain errors. No HTTP here: crm.app maps them to status codes."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(DomainError):
    """The request is valid but clashes with the current state (e.g. a backwards move)."""


class Invalid(DomainError):
    """Input is wrong; `fields` maps each bad field to why."""

    @classmethod
    def field(cls, name: str, reason: str) -> Invalid:
        return cls(f"{name}: {reason}", fields={name: reason})


class Forbidden(DomainError):
    """The caller may not do this."""
