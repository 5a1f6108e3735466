"""DKIM signing in the app (SPEC 14), for relays that do not sign: the last step before a message leaves.

Every sender `make_sender` returns is wrapped in `SigningSender` when CRM_DKIM_DOMAIN,
CRM_DKIM_SELECTOR and CRM_DKIM_KEY_FILE are set, so campaign bytes (the fast path) and
transactional EmailMessages are signed in one place, after every header is final.
Canonicalization relaxed/relaxed (survives a relay's header refolding); `h=` lists From, To,
Subject, Date, Message-ID, MIME-Version, Content-Type and, where present, List-Unsubscribe,
List-Unsubscribe-Post and List-Id. Each header is listed once more than it occurs, so a header
added later by someone else breaks the signature instead of riding on it.
"""

from __future__ import annotations

import base64
import email
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path

import dkim
from dkim.asn1 import ASN1FormatError
from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key

from crm.config import Settings
from crm.mail.headers import head_of

SIGNED = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
          "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")
ALWAYS = ("From", "To", "Subject", "Date", "Message-ID")


class Signer:
    def __init__(self, domain: str, selector: str, key_pem: bytes) -> None:
        self.domain = domain.encode()
        self.selector = selector.encode()
        self.key = key_pem

    def sign(self, data: bytes) -> bytes:
        """The message with a DKIM-Signature header on top."""
        present = _present_headers(data)
        names = [h for h in SIGNED if h.lower() in present or h in ALWAYS]
        # Oversigning: each name once more than it appears, so nobody can add a second one unnoticed.
        include = [n.encode() for n in names for _ in range(present.get(n.lower(), 0) + 1)]
        header = dkim.sign(data, self.selector, self.domain, self.key, canonicalize=(b"relaxed", b"relaxed"),
                           include_headers=include, linesep=b"\r\n")
        return header + data


def _present_headers(data: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in head_of(data).split(b"\n"):
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        counts[name] = counts.get(name, 0) + 1
    return counts


@lru_cache(maxsize=4)
def _load(domain: str, selector: str, path: Path) -> Signer:
    return Signer(domain, selector, path.read_bytes())


def signer_for(settings: Settings) -> Signer | None:
    if not settings.dkim_enabled:
        return None
    assert settings.dkim_domain and settings.dkim_selector and settings.dkim_key_file
    return _load(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_integer(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # one spare byte keeps the sign bit clear
    if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return b"\x02" + _der_length(len(body)) + body


# AlgorithmIdentifier { rsaEncryption, NULL }, DER.
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")


def public_key_of(key_pem: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of an RSA private key in PEM (what p= carries, base64)."""
    key = parse_pem_private_key(key_pem)
    ints = b"".join(_der_integer(key[k]) for k in ("modulus", "publicExponent"))
    rsa = b"\x30" + _der_length(len(ints)) + ints
    bits = b"\x00" + rsa
    inner = _RSA_ALGORITHM + b"\x03" + _der_length(len(bits)) + bits
    return b"\x30" + _der_length(len(inner)) + inner


def public_key_record(key_pem: bytes) -> str:
    """The TXT record to publish at <selector>._domainkey.<domain> for this private key."""
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public_key_of(key_pem)).decode()}"


def same_public_key(published_p: str, key_pem: bytes) -> bool:
    """Does a record's p= (base64) hold the public half of this private key?"""
    try:
        published = parse_public_key(base64.b64decode(published_p.replace(" ", ""), validate=True))
    except (ValueError, UnparsableKeyError, ASN1FormatError, IndexError):
        return False
    mine = parse_pem_private_key(key_pem)
    return (published["modulus"], published["publicExponent"]) == (mine["modulus"], mine["publicExponent"])


class SigningSender:
    """Signs what it is given, then hands the signed bytes to the sender it wraps."""

    def __init__(self, inner: object, signer: Signer, mail_from: str) -> None:
        self.inner = inner
        self.signer = signer
        self.envelope_from = parseaddr(mail_from)[1]

    def send(self, message: EmailMessage) -> None:
        to = parseaddr(str(message["To"]))[1]
        if not to.isascii():
            # SMTPUTF8 mail goes through the email package's own path, signature header added.
            signed = self.signer.sign(message.as_bytes(policy=SMTP_POLICY.clone(utf8=True)))
            self.inner.send(email.message_from_bytes(signed, policy=SMTP_POLICY.clone(utf8=True)))  # type: ignore[attr-defined]
            return
        data = self.signer.sign(message.as_bytes(policy=SMTP_POLICY))
        self.inner.send_raw(self.envelope_from, to, data, str(message["Message-ID"]))  # type: ignore[attr-defined]

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        self.inner.send_raw(envelope_from, to, self.signer.sign(data), message_id)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]
