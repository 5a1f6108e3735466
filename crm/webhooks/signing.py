"""Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets_: list[str], webhook_id: str, timestamp: int, body: str) -> str:
    """One signature per live secret, space-separated (receivers accept any that verifies)."""
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_)
