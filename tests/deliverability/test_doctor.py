"""`crm doctor` and GET /api/v1/deliverability against a DNS server on loopback (dnslib), never the internet:
good records pass; missing, doubled, permissive or mismatched ones fail with what to publish."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RR, TXT
from dnslib.server import BaseResolver, DNSServer

from crm.config import PLACEHOLDER_POSTAL_ADDRESS
from crm.deliverability import cli, service
from crm.mail.dkim import public_key_record
from tests.conftest import make_settings
from tests.deliverability.keys import make_key
from tests.harness import free_port


class Zone(BaseResolver):  # type: ignore[misc]
    """TXT records by name; anything else: NXDOMAIN."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if request.q.qtype == QTYPE.TXT and name in self.txt:
            for value in self.txt[name]:
                chunks = [value[i:i + 255] for i in range(0, len(value), 255)]  # one TXT string is 255 at most
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        elif not self.txt.get(name):
            reply.header.rcode = 3  # NXDOMAIN
        return reply


@pytest.fixture
def dns_zone() -> Iterator[tuple[Zone, int]]:
    zone, port = Zone(), free_port()
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    yield zone, port
    for server in servers:
        server.stop()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return make_key(tmp_path)


def _settings(settings: Any, tmp_path: Path, port: int, smtp: Any, key: Path, **extra: Any) -> Any:
    values = {"mail_from": "Charity <news@charity.example>", "dns_nameservers": f"127.0.0.1:{port}",
              "mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
              "org_postal_address": "Example Charity, 1 High Street, Leeds LS1 1AA",
              "dkim_domain": "charity.example", "dkim_selector": "crm", "dkim_key_file": key, **extra}
    return make_settings(tmp_path, settings.database_url, **values)


def _good(zone: Zone, key: Path) -> None:
    zone.txt["charity.example"] = ["v=spf1 include:_spf.relay.example ~all", "google-site-verification=abc"]
    zone.txt["crm._domainkey.charity.example"] = [public_key_record(key.read_bytes())]
    zone.txt["_dmarc.charity.example"] = ["v=DMARC1; p=quarantine; rua=mailto:dmarc@charity.example"]


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_good_records_pass_and_doctor_exits_0(settings, tmp_path, dns_zone, smtp, key, capsys):
    zone, port = dns_zone
    _good(zone, key)
    live = _settings(settings, tmp_path, port, smtp, key)
    assert cli.cmd_doctor(argparse.Namespace(), live) == 0
    out = capsys.readouterr().out
    for name in ("settings", "database", "broker", "relay", "spf", "dkim", "dmarc"):
        assert f"[ok  ] {name}:" in out, out
    assert "overall: ok" in out


def test_missing_records_fail_and_say_what_to_publish(settings, tmp_path, dns_zone, smtp, key, capsys):
    zone, port = dns_zone
    live = _settings(settings, tmp_path, port, smtp, key)
    assert cli.cmd_doctor(argparse.Namespace(), live) == 1
    out = capsys.readouterr().out
    assert "[FAIL] spf: charity.example has no SPF record" in out
    assert 'fix: publish charity.example TXT "v=spf1 include:' in out
    assert "[FAIL] dkim: no DKIM key at crm._domainkey.charity.example" in out
    assert f'fix: publish crm._domainkey.charity.example TXT "{public_key_record(key.read_bytes())}"' in out
    assert "[FAIL] dmarc: charity.example has no DMARC record" in out
    assert 'publish _dmarc.charity.example TXT "v=DMARC1; p=none;' in out


def test_broken_records_are_named(settings, tmp_path, dns_zone, smtp, key):
    zone, port = dns_zone
    _good(zone, key)
    other = make_key(tmp_path, "other.pem")
    zone.txt["charity.example"] = ["v=spf1 +all"]
    zone.txt["crm._domainkey.charity.example"] = [public_key_record(other.read_bytes())]  # a different key
    zone.txt["_dmarc.charity.example"] = ["v=DMARC1; p=none", "v=DMARC1; p=reject"]
    checks = _by_name(service.report(_settings(settings, tmp_path, port, smtp, key)))
    assert checks["spf"]["status"] == "fail" and "lets anyone send" in checks["spf"]["detail"]
    assert checks["dkim"]["status"] == "fail" and "not the public half" in checks["dkim"]["detail"]
    assert public_key_record(key.read_bytes()) in checks["dkim"]["fix"]
    assert checks["dmarc"]["status"] == "fail" and "2 DMARC records" in checks["dmarc"]["detail"]
    zone.txt["charity.example"] = ["v=spf1 a mx ~all", "v=spf1 include:_spf.relay.example -all"]
    zone.txt["_dmarc.charity.example"] = ["v=DMARC1; p=none; rua=mailto:d@charity.example"]
    checks = _by_name(service.report(_settings(settings, tmp_path, port, smtp, key)))
    assert checks["spf"]["status"] == "fail" and "2 SPF records" in checks["spf"]["detail"]
    assert checks["dmarc"]["status"] == "warn" and "p=quarantine" in checks["dmarc"]["fix"]


def test_relay_and_settings_problems(settings, tmp_path, dns_zone, smtp, key):
    zone, port = dns_zone
    _good(zone, key)
    # STARTTLS asked for, but the relay (aiosmtpd, no TLS) does not offer it; the placeholder address.
    live = _settings(settings, tmp_path, port, smtp, key, smtp_starttls=True,
                     org_postal_address=PLACEHOLDER_POSTAL_ADDRESS)
    checks = _by_name(service.report(live))
    assert checks["relay"]["status"] == "fail" and "does not offer STARTTLS" in checks["relay"]["detail"]
    assert checks["settings"]["status"] == "warn" and "CRM_ORG_POSTAL_ADDRESS" in checks["settings"]["detail"]
    closed = _settings(settings, tmp_path, port, smtp, key, smtp_port=free_port())
    assert _by_name(service.report(closed))["relay"]["status"] == "fail"
    unsigned = _settings(settings, tmp_path, port, smtp, key, dkim_domain=None, dkim_selector=None,
                         dkim_key_file=None)
    dkim = _by_name(service.report(unsigned))["dkim"]
    assert dkim["status"] == "warn" and "relay must sign" in dkim["detail"]


def test_no_dns_answer_is_a_failure_not_a_crash(settings, tmp_path, smtp, key):
    silent = _settings(settings, tmp_path, free_port(), smtp, key)  # nothing listens there
    checks = _by_name(service.report(silent))
    assert checks["spf"]["status"] == "fail" and "no DNS answer" in checks["spf"]["detail"]


def test_the_api_gives_admins_the_same_report(settings, tmp_path, dns_zone, smtp, key, auth):
    from litestar.testing import TestClient

    from crm.app import create_app

    zone, port = dns_zone
    _good(zone, key)
    live = _settings(settings, tmp_path, port, smtp, key)
    with TestClient(app=create_app(live), base_url="http://testserver.local") as client:
        r = client.get("/api/v1/deliverability", headers=auth("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["domain"] == "charity.example" and body["status"] == "ok"
        assert [c["name"] for c in body["checks"]] == ["settings", "database", "broker", "relay", "spf", "dkim",
                                                       "dmarc"]
        assert client.get("/api/v1/deliverability", headers=auth("editor")).status_code == 403
        assert client.get("/api/v1/deliverability").status_code == 401
