"""`crm doctor` and GET /api/v1/deliverability (SPEC 14): is this installation set up to reach inboxes?

Checks, each `ok`, `warn` or `fail` with what to publish or fix:
settings, database, broker, relay (connect, EHLO, STARTTLS when configured), and the From
domain's SPF, DKIM and DMARC records. DNS goes to the system's resolvers, or to
CRM_DNS_NAMESERVERS (tests point it at a server on loopback). Nothing here sends mail.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import asdict, dataclass
from email.utils import parseaddr
from typing import Any

import dns.exception
import dns.resolver
from sqlalchemy import text

from crm.config import PLACEHOLDER_POSTAL_ADDRESS, Settings, parse_nameservers
from crm.db import session_scope
from crm.mail.dkim import public_key_record, same_public_key

OK, WARN, FAIL = "ok", "warn", "fail"
DNS_TIMEOUT = 3.0


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def from_domain(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1].rpartition("@")[2].lower()


def resolver_for(settings: Settings) -> dns.resolver.Resolver:
    servers = parse_nameservers(settings.dns_nameservers)
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [host for host, _ in servers]
        resolver.port = servers[0][1]
    resolver.lifetime = resolver.timeout = DNS_TIMEOUT
    return resolver


def txt_records(resolver: dns.resolver.Resolver, name: str) -> list[str] | None:
    """The TXT strings at `name` ([] when there are none), or None when DNS gave no answer at all."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError):
        return None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


# --- the checks -------------------------------------------------------------------------------


def check_settings(settings: Settings) -> Check:
    problems = []
    if settings.org_postal_address == PLACEHOLDER_POSTAL_ADDRESS:
        problems.append("CRM_ORG_POSTAL_ADDRESS is the placeholder: bulk mail must carry the charity's real address")
    if settings.mail_backend != "smtp":
        problems.append(f"CRM_MAIL_BACKEND is {settings.mail_backend}: nothing reaches a relay")
    if settings.env == "production" and not settings.public_base_url.startswith("https://"):
        problems.append("CRM_PUBLIC_BASE_URL is not https: one-click unsubscribe links must be https")
    if problems:
        return Check("settings", WARN, "; ".join(problems), "set the variables named above")
    return Check("settings", OK, "configuration loads and names a relay and a postal address")


def check_database(settings: Settings) -> Check:
    try:
        with session_scope(settings) as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check("database", FAIL, f"cannot reach the database: {type(exc).__name__}: {exc}"[:300],
                     "check CRM_DATABASE_URL and that the server is up")
    return Check("database", OK, "reachable")


def check_broker(settings: Settings) -> Check:
    from kombu import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=2, transport_options={"max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return Check("broker", FAIL, f"cannot reach the broker: {type(exc).__name__}",
                     "check CRM_BROKER_URL and that Redis is up")
    return Check("broker", OK, "reachable")


def check_relay(settings: Settings) -> Check:
    s = settings
    where = f"{s.smtp_host}:{s.smtp_port}"
    try:
        if s.smtp_ssl:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=min(s.smtp_timeout, 10),
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=min(s.smtp_timeout, 10))
        with conn:
            conn.ehlo()
            tls = "TLS from the start (CRM_SMTP_SSL)" if s.smtp_ssl else "no TLS"
            if not s.smtp_ssl and conn.has_extn("starttls"):
                if not s.smtp_starttls:
                    return Check("relay", WARN, f"{where} answers and offers STARTTLS, which is not used",
                                 "set CRM_SMTP_STARTTLS=true so passwords and mail are encrypted")
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
                tls = "STARTTLS works"
            elif s.smtp_starttls:
                return Check("relay", FAIL, f"{where} answers but does not offer STARTTLS",
                             "use the relay's TLS port, or unset CRM_SMTP_STARTTLS if it is on this machine")
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        return Check("relay", FAIL, f"cannot talk to {where}: {type(exc).__name__}: {exc}"[:300],
                     "check CRM_SMTP_HOST, CRM_SMTP_PORT and the TLS settings")
    status = OK if (s.smtp_ssl or s.smtp_starttls or s.smtp_host in ("localhost", "127.0.0.1")) else WARN
    return Check("relay", status, f"{where} answers; {tls}",
                 None if status == OK else "mail to a remote relay should be encrypted: CRM_SMTP_STARTTLS=true")


def check_spf(resolver: dns.resolver.Resolver, domain: str) -> Check:
    records = txt_records(resolver, domain)
    if records is None:
        return Check("spf", FAIL, f"no DNS answer for {domain}", "check the resolver (CRM_DNS_NAMESERVERS)")
    spf = [r for r in records if r.lower().startswith("v=spf1")]
    publish = f'{domain} TXT "v=spf1 include:<your relay\'s SPF domain> ~all"'
    if not spf:
        return Check("spf", FAIL, f"{domain} has no SPF record", f"publish {publish}")
    if len(spf) > 1:
        return Check("spf", FAIL, f"{domain} has {len(spf)} SPF records; receivers treat that as none",
                     "merge them into one v=spf1 record")
    terms = spf[0].lower().split()
    if "+all" in terms or "all" in terms:
        return Check("spf", FAIL, f"SPF lets anyone send as {domain}: {spf[0]}", "end the record with ~all or -all")
    if not any(t.endswith("all") for t in terms) and not any(t.startswith("redirect=") for t in terms):
        return Check("spf", WARN, f"SPF has no closing all: {spf[0]}", "end the record with ~all or -all")
    return Check("spf", OK, spf[0])


def check_dkim(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> Check:
    if not settings.dkim_enabled:
        return Check("dkim", WARN, "the app does not sign (CRM_DKIM_* unset): the relay must sign for "
                     f"{domain}", "have the relay sign with d=" + domain + ", or set CRM_DKIM_DOMAIN, "
                     "CRM_DKIM_SELECTOR and CRM_DKIM_KEY_FILE")
    assert settings.dkim_key_file and settings.dkim_selector and settings.dkim_domain
    pem = settings.dkim_key_file.read_bytes()
    name = f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}"
    publish = f'publish {name} TXT "{public_key_record(pem)}"'
    notes = []
    if settings.dkim_domain != domain and not domain.endswith("." + settings.dkim_domain):
        notes.append(f"CRM_DKIM_DOMAIN {settings.dkim_domain} does not align with the From domain {domain} (DMARC)")
    records = txt_records(resolver, name)
    if records is None:
        return Check("dkim", FAIL, f"no DNS answer for {name}", "check the resolver (CRM_DNS_NAMESERVERS)")
    keys = [r for r in records if "p=" in r]
    if not keys:
        return Check("dkim", FAIL, f"no DKIM key at {name}", publish)
    tags = dict(_tags(keys[0]))
    if not tags.get("p"):
        return Check("dkim", FAIL, f"the key at {name} is revoked (empty p=)", publish)
    if not same_public_key(tags["p"], pem):
        return Check("dkim", FAIL, f"the key at {name} is not the public half of CRM_DKIM_KEY_FILE", publish)
    if notes:
        return Check("dkim", FAIL, "; ".join(notes), f"set CRM_DKIM_DOMAIN={domain} and {publish}")
    return Check("dkim", OK, f"{name} publishes the key messages are signed with")


def check_dmarc(resolver: dns.resolver.Resolver, domain: str) -> Check:
    name = f"_dmarc.{domain}"
    records = txt_records(resolver, name)
    if records is None:
        return Check("dmarc", FAIL, f"no DNS answer for {name}", "check the resolver (CRM_DNS_NAMESERVERS)")
    dmarc = [r for r in records if r.replace(" ", "").lower().startswith("v=dmarc1")]
    publish = f'publish {name} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"'
    if not dmarc:
        return Check("dmarc", FAIL, f"{domain} has no DMARC record (Gmail, Yahoo and Outlook require one "
                     "for bulk mail)", publish)
    if len(dmarc) > 1:
        return Check("dmarc", FAIL, f"{name} has {len(dmarc)} DMARC records; receivers ignore them all",
                     "keep exactly one")
    policy = dict(_tags(dmarc[0])).get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return Check("dmarc", FAIL, f"DMARC record has no valid p= policy: {dmarc[0]}", publish)
    if policy == "none":
        return Check("dmarc", WARN, f"DMARC is monitoring only (p=none): {dmarc[0]}",
                     "once reports show your mail passing, move to p=quarantine")
    return Check("dmarc", OK, dmarc[0])


def _tags(record: str) -> list[tuple[str, str]]:
    out = []
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out.append((key.strip().lower(), value.strip()))
    return out


def run(settings: Settings, *, infrastructure: bool = True) -> list[Check]:
    """Every check, in the order a person would fix them."""
    checks = [check_settings(settings)]
    if infrastructure:
        checks += [check_database(settings), check_broker(settings), check_relay(settings)]
    domain = from_domain(settings)
    resolver = resolver_for(settings)
    checks += [check_spf(resolver, domain), check_dkim(resolver, settings, domain), check_dmarc(resolver, domain)]
    return checks


def report(settings: Settings) -> dict[str, Any]:
    checks = run(settings)
    worst = FAIL if any(c.status == FAIL for c in checks) else WARN if any(c.status == WARN for c in checks) else OK
    return {"status": worst, "domain": from_domain(settings), "checks": [asdict(c) for c in checks]}
