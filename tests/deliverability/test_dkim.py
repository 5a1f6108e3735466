"""DKIM signing (SPEC 14): every message the app sends is signed, and dkimpy verifies it against the
public key; h= holds From, To, Subject, Date, Message-ID and List-Unsubscribe(-Post) where present."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dkim
import pytest

from crm.campaigns import pipeline
from crm.config import ConfigError
from crm.db import session_scope
from crm.mail.dkim import public_key_record
from crm.outbox import service as outbox
from tests.conftest import make_settings
from tests.deliverability.keys import make_key
from tests.deliverability.test_autopause import _people
from tests.deliverability.test_pacing import _campaign


@pytest.fixture
def signing(settings: Any, tmp_path: Path) -> Any:
    key = make_key(tmp_path)
    return make_settings(tmp_path, settings.database_url, mail_backend="file", outbox_dir=tmp_path / "eml",
                         dkim_domain="example.org", dkim_selector="crm2026", dkim_key_file=key)


def _dns(settings: Any) -> Any:
    record = public_key_record(settings.dkim_key_file.read_bytes()).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"crm2026._domainkey.example.org." else None
    return lookup


def _signed_header(data: bytes) -> dict[str, str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    sig = re.search(r"^DKIM-Signature:(.*?)(?=^\S)", head + "\r\nX: y", re.S | re.M).group(1)  # type: ignore[union-attr]
    tags = dict(part.strip().split("=", 1) for part in re.sub(r"\s+", "", sig).split(";") if "=" in part)
    return tags


def _files(settings: Any) -> list[bytes]:
    return [p.read_bytes() for p in sorted(settings.outbox_dir.glob("*.eml"))]


def test_campaign_mail_is_signed_and_verifies_against_the_public_key(signing):
    _people(signing, 3, ["ok.example.org"])
    cid = _campaign(signing)
    pipeline.send_some(signing, cid)
    files = _files(signing)
    assert len(files) == 3
    for data in files:
        assert dkim.verify(data, dnsfunc=_dns(signing)), data[:400]
        tags = _signed_header(data)
        assert tags["d"] == "example.org" and tags["s"] == "crm2026" and tags["c"] == "relaxed/relaxed"
        signed = set(tags["h"].lower().split(":"))
        assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe",
                "list-unsubscribe-post"} <= signed
        # Anything changed on the way breaks it: a receiver would see the forgery.
        assert not dkim.verify(data.replace(b"Subject: Hello", b"Subject: Win a prize"), dnsfunc=_dns(signing))
        assert not dkim.verify(data.replace(b"News for", b"Olds for"), dnsfunc=_dns(signing))


def test_transactional_mail_is_signed_too(signing):
    with session_scope(signing) as s:
        mid = outbox.queue(s, "webhook-disabled", "admin@example.org",
                           {"endpoint": {"id": 1, "url": "https://hooks.example.org/x"}, "reason": "410 Gone"})
    outbox.deliver_one(signing, mid)  # type: ignore[arg-type]
    (data,) = _files(signing)
    assert dkim.verify(data, dnsfunc=_dns(signing))
    signed = set(_signed_header(data)["h"].lower().split(":"))
    assert {"from", "to", "subject", "date", "message-id"} <= signed
    assert "list-unsubscribe" not in signed  # not present, so not listed


class _Raw:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data.append(envelope.original_content)
        return "250 OK"


def test_a_signature_verifies_as_the_smtp_server_received_it(settings, signing, tmp_path):
    from aiosmtpd.controller import Controller

    from tests.harness import free_port

    handler, port = _Raw(), free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        via_smtp = make_settings(tmp_path, settings.database_url, mail_backend="smtp", smtp_host="127.0.0.1",
                                 smtp_port=port, dkim_domain="example.org", dkim_selector="crm2026",
                                 dkim_key_file=signing.dkim_key_file)
        _people(via_smtp, 2, ["ok.example.org"])
        pipeline.send_some(via_smtp, _campaign(via_smtp))
    finally:
        server.stop()
    assert len(handler.data) == 2
    for data in handler.data:
        assert dkim.verify(data, dnsfunc=_dns(signing))


def test_dkim_settings_are_all_or_nothing_and_the_key_must_be_a_key(tmp_path, settings):
    with pytest.raises(ConfigError, match="CRM_DKIM_SELECTOR, CRM_DKIM_KEY_FILE must be set"):
        make_settings(tmp_path, settings.database_url, dkim_domain="example.org")
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match="CRM_DKIM_KEY_FILE must be an RSA private key"):
        make_settings(tmp_path, settings.database_url, dkim_domain="example.org", dkim_selector="s",
                      dkim_key_file=bad)
    with pytest.raises(ConfigError, match="CRM_DKIM_KEY_FILE cannot be read"):
        make_settings(tmp_path, settings.database_url, dkim_domain="example.org", dkim_selector="s",
                      dkim_key_file=tmp_path / "missing.pem")
