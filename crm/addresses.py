"""Email addresses as this service knows them: validated, normalized, with a lower-case identity.

On the base floor, so staff accounts and contacts share one rule (SPEC section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from crm.errors import Invalid


@dataclass(frozen=True)
class NormalizedEmail:
    email: str  # email-validator's normalized form
    key: str  # its lower-case twin: the identity

    def __str__(self) -> str:
        return self.email


def normalize_email(raw: str, field: str = "email") -> NormalizedEmail:
    """Validate syntax (no DNS: the service may run offline) and normalize."""
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid.field(field, "an email address is required")
    if any(ch in raw for ch in "\r\n\x00"):
        raise Invalid.field(field, "must not contain line breaks")
    try:
        info = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise Invalid.field(field, str(exc)) from None
    return NormalizedEmail(info.normalized, info.normalized.lower())
