"""Signed, scoped, expiring tokens for every link in an email.

A token names one contact and one purpose and carries its own expiry, signed with
HMAC-SHA256 under a key derived from CRM_SECRET_KEY and the purpose, so a token for
one purpose never opens another. New links are signed with the current key; `read_token`
also accepts a list of secrets (the current key first, then CRM_SECRET_KEY_FALLBACKS), so a
rotated key keeps the links already in inboxes working until the old key is dropped from the list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# staff-invite: a console invitation (the id is a staff member's); staff-login: the few minutes between a
# right password and the second factor.
Purpose = Literal["confirm", "preferences", "unsubscribe", "click", "open", "respond", "volunteer", "staff-invite",
                  "staff-login"]
PURPOSES: tuple[str, ...] = ("confirm", "preferences", "unsubscribe", "click", "open", "respond", "volunteer",
                             "staff-invite", "staff-login")


class TokenError(Exception):
    def __init__(self, reason: Literal["malformed", "tampered", "expired", "wrong-purpose"]) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    contact_id: int
    purpose: str
    expires_at: int
    extra: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=64)
def _key(secret: str, purpose: str) -> bytes:
    """Derived once per (secret, purpose): a campaign signs several links per person with the same key."""
    return hmac.new(secret.encode(), f"crm-token:{purpose}".encode(), hashlib.sha256).digest()


def make_token(
    secret: str, contact_id: int, purpose: Purpose, ttl_seconds: int, *, extra: str = "", now: float | None = None
) -> str:
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    body = f"{contact_id}:{expires}:{extra}".encode()
    sig = _signature(secret, purpose, body)
    return f"{_b64(body)}.{_b64(sig)}"


def _signature(secret: str, purpose: str, body: bytes) -> bytes:
    return hmac.new(_key(secret, purpose), body, hashlib.sha256).digest()[:18]


def read_token(secrets: str | Sequence[str], token: str, purpose: Purpose, *, now: float | None = None
               ) -> TokenClaims:
    """The claims of `token`, signed with any of `secrets` (the current key first)."""
    keys = [secrets] if isinstance(secrets, str) else [k for k in secrets if k]
    try:
        body_b64, sig_b64 = token.split(".")
        body, sig = _unb64(body_b64), _unb64(sig_b64)
        contact_s, expires_s, extra = body.decode().split(":", 2)
        contact_id, expires = int(contact_s), int(expires_s)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed") from None
    if not any(hmac.compare_digest(sig, _signature(key, purpose, body)) for key in keys):
        for other in PURPOSES:
            if other != purpose and any(hmac.compare_digest(sig, _signature(key, other, body)) for key in keys):
                raise TokenError("wrong-purpose")
        raise TokenError("tampered")
    if expires < (now if now is not None else time.time()):
        raise TokenError("expired")
    return TokenClaims(contact_id=contact_id, purpose=purpose, expires_at=expires, extra=extra)
