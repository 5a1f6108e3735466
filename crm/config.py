"""Settings: the only module that reads the environment.

Every variable of SPEC section 2 lives here, flat, with the `CRM_` prefix.
A bad value stops startup with a message naming the variable (see
`load_settings`).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_POSTAL_ADDRESS = "123 Example Street, Springfield, ST 00000"
DEFAULT_ORG_NAME = "Cancer Helpline"  # SPEC 2; the only place the name is written


_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def parse_domain_rates(text: str | None) -> dict[str, float]:
    """`gmail.com=20,yahoo.com=10` -> {"gmail.com": 20.0, ...}; ValueError says which entry is wrong."""
    rates: dict[str, float] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        domain, sep, value = entry.partition("=")
        domain = domain.strip().lower()
        if not sep or not _DNS_NAME.fullmatch(domain) or "." not in domain:
            raise ValueError(f"{entry.strip()!r} is not domain=rate (e.g. gmail.com=20)")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{entry.strip()!r}: the rate must be a number of messages per second") from None
        if not 0 < rate < float("inf"):
            raise ValueError(f"{entry.strip()!r}: the rate must be more than 0")
        if domain in rates:
            raise ValueError(f"{domain} is listed twice")
        rates[domain] = rate
    return rates


def parse_nameservers(text: str | None) -> list[tuple[str, int]]:
    """`127.0.0.1:5353,::1` -> [("127.0.0.1", 5353), ("::1", 53)]."""
    out: list[tuple[str, int]] = []
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, port = entry, 53
        if entry.count(":") == 1 or entry.startswith("["):
            host, _, tail = entry.rpartition(":")
            host = host.strip("[]")
            if not tail.isdigit() or not 0 < int(tail) < 65536:
                raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
            port = int(tail)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address (optionally :port)") from None
        out.append((host, port))
    return out


def _is_rsa_private_key(pem: bytes) -> bool:
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key

    try:
        parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError, IndexError):
        return False
    return True


class ConfigError(Exception):
    """Startup configuration is unusable; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", validate_default=True)

    env: Literal["development", "production"] = "development"
    var_dir: Path = Path("./var")
    database_url: str = "sqlite:///./var/crm.db"
    broker_url: str = "sqla+sqlite:///./var/broker.db"
    redis_url: str | None = None
    # Names the Celery queue and the Redis key namespace, so two installations (or two test
    # runs) can share one broker and one Redis without taking each other's work.
    instance: str = Field("crm", pattern=r"^[A-Za-z0-9_.-]{1,40}$")

    mail_backend: Literal["smtp", "file", "memory"] = "file"
    outbox_dir: Path = Path("./var/outbox")
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = Field(30.0, gt=0)
    # SMTP connections one campaign sender holds and sends over in rounds. A sender killed mid-send may
    # resend at most one message per connection: 1 keeps SPEC 8's "the one message it had in flight".
    smtp_connections: int = Field(1, ge=1, le=32)

    secret_key: str | None = None
    secret_key_fallbacks: str | None = None  # comma-separated earlier keys, still accepted for links
    webhook_secret: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    allowed_origins: str | None = None

    mail_from: str = f"{DEFAULT_ORG_NAME} <news@example.org>"
    org_postal_address: str = PLACEHOLDER_POSTAL_ADDRESS
    org_name: str = Field(DEFAULT_ORG_NAME, min_length=1, max_length=200)
    org_website: str | None = None
    org_helpline: str | None = Field(None, max_length=60)
    notify_volunteers: str = "volunteers@example.org"
    notify_donations: str = "donations@example.org"

    send_rate: float = Field(50.0, gt=0)
    # SPEC 14: per recipient domain caps inside send_rate ("gmail.com=20,yahoo.com=10", messages per second).
    domain_rates: str | None = None
    pause_on_failure_rate: float = Field(5.0, gt=0, le=100)  # percent of attempts, after 100 attempts
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    # Where `crm doctor` asks about DNS records ("127.0.0.1:5353,10.0.0.2"); the system's resolvers when unset.
    dns_nameservers: str | None = None
    form_rate_limit: int = Field(20, ge=1)
    match_postal_prefix: int = Field(3, ge=1, le=10)

    # Not in the contract; ours to choose.
    templates_dir: Path = PROJECT_ROOT / "templates" / "email"
    confirm_token_days: int = Field(30, ge=1)
    preferences_token_days: int = Field(90, ge=1)
    unsubscribe_token_days: int = Field(3650, ge=366)  # CAN-SPAM asks >= 30 days; we keep ten years
    consent_version: str = "2026-01"
    timezone: str = "UTC"
    digest_weekly_day: int = Field(1, ge=0, le=6)  # crontab day_of_week, 1 = Monday
    digest_monthly_day: int = Field(1, ge=1, le=28)
    digest_hour: int = Field(9, ge=0, le=23)
    donation_overdue_hours: int = Field(48, ge=1)
    staff_session_hours: float = Field(8.0, gt=0)  # console sessions end after this long without a request
    staff_invite_days: int = Field(7, ge=1)  # a console invitation's set-password link stays valid this long
    donation_summary_hour: int = Field(8, ge=0, le=23)  # the daily overdue-inquiries email, local time
    soft_bounce_threshold: int = Field(3, ge=1)
    send_batch_size: int = Field(200, ge=1, le=5000)
    lease_seconds: int = Field(120, ge=10)
    waitlist_offer_hours: int = Field(12, ge=1)
    shift_reminder_hours: int = Field(24, ge=1)
    qualification_warn_days: int = Field(30, ge=1)
    outbox_sweep_seconds: float = Field(15.0, gt=0)
    webhook_dispatch_seconds: float = Field(1.0, gt=0)  # how often the beat fans out and starts webhook POSTs
    # Longer than the 15 s timeout plus connecting: a live attempt is never taken twice; a worker killed
    # mid-POST delays its delivery by this much.
    webhook_lease_seconds: int = Field(45, ge=20)
    # Journeys (SPEC 13): no step is handed to the pipeline between these hours of CRM_TIMEZONE
    # ("21-8" = 21:00 to 08:00); an empty value turns quiet hours off.
    quiet_hours: str = "21-8"
    journey_tick_seconds: float = Field(5.0, gt=0)  # how often the beat enrols, exits and hands out due steps

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"([01]?\d|2[0-3])-([01]?\d|2[0-3])", v):
            raise ValueError("must be two hours of the day such as 21-8 (from 21:00 to 08:00), or empty for none")
        return v

    @field_validator("org_website")
    @classmethod
    def _website(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v or None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as America/New_York)") from None
        return v

    @field_validator("mail_from", "notify_volunteers", "notify_donations", "org_postal_address", "org_name",
                     "org_helpline")
    @classmethod
    def _no_crlf(cls, v: str | None) -> str | None:
        if v and ("\r" in v or "\n" in v):
            raise ValueError("must not contain line breaks")
        return v

    @field_validator("domain_rates")
    @classmethod
    def _domain_rates(cls, v: str | None) -> str | None:
        parse_domain_rates(v)
        return v

    @field_validator("dkim_domain", "dkim_selector")
    @classmethod
    def _dns_label(cls, v: str | None) -> str | None:
        if v is not None and not _DNS_NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a DNS name (letters, digits, hyphens and dots)")
        return v.lower() if v else v

    @field_validator("dns_nameservers")
    @classmethod
    def _nameservers(cls, v: str | None) -> str | None:
        parse_nameservers(v)
        return v

    @model_validator(mode="after")
    def _dkim_all_or_none(self) -> Settings:
        names = {"CRM_DKIM_DOMAIN": self.dkim_domain, "CRM_DKIM_SELECTOR": self.dkim_selector,
                 "CRM_DKIM_KEY_FILE": self.dkim_key_file}
        missing = [k for k, v in names.items() if not v]
        if missing and len(missing) < len(names):
            raise ValueError(f"{', '.join(missing)} must be set too: DKIM signing needs all three of "
                             "CRM_DKIM_DOMAIN, CRM_DKIM_SELECTOR and CRM_DKIM_KEY_FILE")
        if self.dkim_key_file is not None:
            try:
                pem = self.dkim_key_file.read_bytes()
            except OSError as exc:
                raise ValueError(f"CRM_DKIM_KEY_FILE cannot be read: {exc.strerror or exc}") from None
            if not _is_rsa_private_key(pem):
                raise ValueError("CRM_DKIM_KEY_FILE must be an RSA private key in PEM "
                                 "(openssl genrsa -out dkim.pem 2048)")
        return self

    @property
    def domain_rate_map(self) -> dict[str, float]:
        return parse_domain_rates(self.domain_rates)

    @property
    def dkim_enabled(self) -> bool:
        return bool(self.dkim_domain and self.dkim_selector and self.dkim_key_file)

    @model_validator(mode="after")
    def _production_requires_secrets(self) -> Settings:
        if self.env == "production":
            if not self.secret_key:
                raise ValueError("CRM_SECRET_KEY is required when CRM_ENV=production")
            if not self.webhook_secret:
                raise ValueError("CRM_WEBHOOK_SECRET is required when CRM_ENV=production")
            if self.org_postal_address.strip() == PLACEHOLDER_POSTAL_ADDRESS:
                # Every campaign footer prints it (CAN-SPAM asks for a real one): never send the example.
                raise ValueError("CRM_ORG_POSTAL_ADDRESS is still the placeholder; set the charity's postal "
                                 "address when CRM_ENV=production")
        if self.smtp_ssl and self.smtp_starttls:
            raise ValueError("CRM_SMTP_SSL and CRM_SMTP_STARTTLS cannot both be true")
        return self

    @property
    def cors_origins(self) -> list[str]:
        if self.allowed_origins is None:
            return ["*"] if self.env == "development" else []
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    def verification_secrets(self) -> list[str]:
        """The keys a link may be signed with: the current one first, then CRM_SECRET_KEY_FALLBACKS."""
        earlier = [k.strip() for k in (self.secret_key_fallbacks or "").split(",") if k.strip()]
        return [self.resolved_secret("secret_key"), *earlier]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolved_secret(self, name: Literal["secret_key", "webhook_secret"]) -> str:
        """The configured secret, or (development only) one generated once into var/."""
        value = getattr(self, name)
        if value:
            return value
        path = self.var_dir / name
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        # Two processes may race on first start; the first writer wins and both read it back.
        try:
            with path.open("x") as fh:
                fh.write(value)
            path.chmod(0o600)
        except FileExistsError:
            pass
        return path.read_text().strip()


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p]
            message = str(err["msg"]).removeprefix("Value error, ")
            # Checks across variables (production secrets) name their variables in the message itself.
            lines.append(f"CRM_{loc[0].upper()}: {message}" if loc else message)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
