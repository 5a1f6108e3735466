"""Signed, scoped, expiring tokens for every link in an email.

A token names one contact and one purpose and carries its own expiry, signed with
HMAC-SHA256 under a key derived from CRM_SECRET_KEY and the purpose, so a token for
one purpose never opens another and rotating the secret revokes every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["confirm", "preferences", "unsubscribe", "click", "open", "respond", "volunteer"]
PURPOSES: tuple[str, ...] = ("confirm", "preferences", "unsubscribe", "click", "open", "respond", "volunteer")


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


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"crm-token:{purpose}".encode(), hashlib.sha256).digest()


def make_token(
    secret: str, contact_id: int, purpose: Purpose, ttl_seconds: int, *, extra: str = "", now: float | None = None
) -> str:
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    body = f"{contact_id}:{expires}:{extra}".encode()
    sig = hmac.new(_key(secret, purpose), body, hashlib.sha256).digest()[:18]
    return f"{_b64(body)}.{_b64(sig)}"


def read_token(secret: str, token: str, purpose: Purpose, *, now: float | None = None) -> TokenClaims:
    try:
        body_b64, sig_b64 = token.split(".")
        body, sig = _unb64(body_b64), _unb64(sig_b64)
        contact_s, expires_s, extra = body.decode().split(":", 2)
        contact_id, expires = int(contact_s), int(expires_s)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed") from None
    expected = hmac.new(_key(secret, purpose), body, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(sig, expected):
        for other in PURPOSES:
            if other != purpose and hmac.compare_digest(
                sig, hmac.new(_key(secret, other), body, hashlib.sha256).digest()[:18]
            ):
                raise TokenError("wrong-purpose")
        raise TokenError("tampered")
    if expires < (now if now is not None else time.time()):
        raise TokenError("expired")
    return TokenClaims(contact_id=contact_id, purpose=purpose, expires_at=expires, extra=extra)
