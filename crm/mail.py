"""Email: render Jinja2 templates from templates/email/ and hand messages to a Sender.

The only module that touches templates/email/. Templates live in one folder per email
(`subject.txt`, `body.html`, `body.txt`), each extending the shared `_layout.*`;
a Spanish version sits beside the English one with an `.es` infix
(`body.es.html`), and English is the fallback for any file missing in a language.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)

from crm.config import Settings

LANGUAGES = ("en", "es")
PARTS = ("subject.txt", "body.html", "body.txt")


class HeaderInjection(ValueError):
    pass


def safe_header(value: str, name: str = "header") -> str:
    """Refuse CR/LF (and NUL) in anything that becomes a header."""
    if any(ch in value for ch in "\r\n\x00"):
        raise HeaderInjection(f"{name} must not contain line breaks")
    return value


# --- rendering --------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def environment(templates_dir: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env


def _localized_name(name: str, part: str, language: str) -> str:
    stem, _, ext = part.rpartition(".")
    return f"{name}/{stem}.{language}.{ext}" if language != "en" else f"{name}/{part}"


def template_files(templates_dir: Path) -> dict[str, dict[str, set[str]]]:
    """{email name: {language: {part, ...}}}: what exists on disk, for the both-languages test."""
    found: dict[str, dict[str, set[str]]] = {}
    for folder in sorted(p for p in templates_dir.iterdir() if p.is_dir()):
        langs: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
        for f in folder.iterdir():
            parts = f.name.split(".")
            lang = parts[1] if len(parts) == 3 else "en"
            base = f"{parts[0]}.{parts[-1]}"
            langs.setdefault(lang, set()).add(base)
        found[folder.name] = langs
    return found


@dataclass(frozen=True)
class CompiledEmail:
    """One email's three templates, parsed once and reused for every recipient."""

    name: str
    language: str
    subject: Template
    html: Template
    text: Template

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        subject = " ".join(self.subject.render(context).split())
        html = css_inline.inline(self.html.render(context))
        text = self.text.render(context).strip() + "\n"
        return RenderedEmail(subject=subject, html=html, text=text)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def compile_email(settings: Settings, name: str, language: str = "en") -> CompiledEmail:
    env = environment(str(settings.templates_dir))
    loaded: list[Template] = []
    for part in PARTS:
        try:
            loaded.append(env.get_template(_localized_name(name, part, language)))
        except TemplateNotFound:
            loaded.append(env.get_template(_localized_name(name, part, "en")))
    return CompiledEmail(name, language, *loaded)


def base_context(settings: Settings, language: str) -> dict[str, Any]:
    """What every template may use besides its own context."""
    return {
        "language": language,
        "org": {"name": parseaddr(settings.mail_from)[0] or "Cancer Helpline",
                "postal_address": settings.org_postal_address},
        "public_base_url": settings.public_base_url,
    }


def render(settings: Settings, name: str, context: Mapping[str, Any], language: str = "en") -> RenderedEmail:
    lang = language if language in LANGUAGES else "en"
    return compile_email(settings, name, lang).render({**base_context(settings, lang), **context})


# --- messages ---------------------------------------------------------------------------------


def new_message_id(settings: Settings) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass
class Outgoing:
    to: str
    rendered: RenderedEmail
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)

    def build(self, mail_from: str) -> EmailMessage:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = safe_header(mail_from, "From")
        msg["To"] = Address(addr_spec=safe_header(self.to, "To"))
        msg["Subject"] = safe_header(self.rendered.subject, "Subject")
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = safe_header(self.message_id, "Message-ID")
        msg["MIME-Version"] = "1.0"
        for key, value in self.headers.items():
            msg[safe_header(key, "header name")] = safe_header(value, key)
        msg.set_content(self.rendered.text)
        msg.add_alternative(self.rendered.html, subtype="html")
        return msg


class TransientMailError(Exception):
    """4xx or a dropped connection: try again later."""


class PermanentMailError(Exception):
    """5xx: do not retry. `recipient` tells whether the address itself was refused."""

    def __init__(self, code: int, message: str, *, recipient: bool) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.smtp_message = message
        self.recipient = recipient

    @property
    def is_policy(self) -> bool:
        return " 5.7." in f" {self.smtp_message}"


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...
    def close(self) -> None: ...


class MemorySender:
    """Keeps messages in a list: for tests in one process."""

    outbox: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        MemorySender.outbox.append(message)

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        import email

        MemorySender.outbox.append(email.message_from_bytes(data, policy=SMTP_POLICY))  # type: ignore[arg-type]

    def close(self) -> None:
        pass


class FileSender:
    """One .eml per message, written atomically so a reader never sees half a file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> None:
        mid = str(message["Message-ID"]).strip("<>").replace("/", "_").replace("@", "_at_")
        target = self.directory / f"{mid}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(message.as_bytes())
        tmp.replace(target)

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        target = self.directory / (message_id.strip("<>").replace("/", "_").replace("@", "_at_") + ".eml")
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)

    def close(self) -> None:
        pass


class SmtpSender:
    """One SMTP connection, opened lazily and reused for every message until close()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.smtp_ssl:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
                if s.smtp_starttls:
                    conn.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                conn.login(s.smtp_username, s.smtp_password or "")
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error, recipient=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientMailError(f"cannot connect to {s.smtp_host}:{s.smtp_port}: {exc}") from exc
        return conn

    def send(self, message: EmailMessage) -> None:
        self._transmit(lambda conn: conn.send_message(message))

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        """Pre-built message bytes (CRLF line ends): the campaign pipeline's fast path."""
        self._transmit(lambda conn: _pipelined_sendmail(conn, envelope_from, to, data))

    def _transmit(self, send: Callable[[smtplib.SMTP], dict[str, tuple[int, bytes]]]) -> None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = send(self._conn)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            if code == 421:  # smtplib closed the socket itself; a reused connection must start afresh
                self._drop()
            raise _classify(code, text, recipient=True) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset_after_error(exc.smtp_code)
            raise _classify(exc.smtp_code, exc.smtp_error, recipient=False) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TransientMailError(f"connection lost: {exc}") from exc
        if refused:
            code, text = next(iter(refused.values()))
            raise _classify(code, text, recipient=True)

    def _reset_after_error(self, code: int) -> None:
        if code == 421 or self._conn is None:
            self._drop()
            return
        try:
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is gone either way
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None


def _pipelined_sendmail(conn: smtplib.SMTP, sender: str, rcpt: str, data: bytes) -> dict[str, tuple[int, bytes]]:
    """smtplib's sendmail for one recipient, with RFC 2920 PIPELINING when the server offers it.

    MAIL, RCPT and DATA go in one write and their replies are read together: two round trips per
    message instead of four. Failures raise the same smtplib exceptions sendmail would.
    """
    conn.ehlo_or_helo_if_needed()
    if not conn.has_extn("pipelining") or not (sender.isascii() and rcpt.isascii()):
        return conn.sendmail(sender, [rcpt], data)
    conn.send(f"MAIL FROM:{smtplib.quoteaddr(sender)}\r\nRCPT TO:{smtplib.quoteaddr(rcpt)}\r\nDATA\r\n")
    mail_reply, rcpt_reply, data_reply = conn.getreply(), conn.getreply(), conn.getreply()
    if data_reply[0] == 354 and (mail_reply[0] != 250 or rcpt_reply[0] not in (250, 251)):
        conn.send(b".\r\n")  # a server that opened DATA anyway gets an empty message, then RSET
        conn.getreply()
    if 421 in (mail_reply[0], rcpt_reply[0], data_reply[0]):
        conn.close()
    elif data_reply[0] != 354:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.rset()
    if mail_reply[0] != 250:
        raise smtplib.SMTPSenderRefused(mail_reply[0], mail_reply[1], sender)
    if rcpt_reply[0] not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({rcpt: rcpt_reply})
    if data_reply[0] != 354:
        raise smtplib.SMTPDataError(*data_reply)
    body = smtplib._quote_periods(data)  # noqa: SLF001 - the same dot-stuffing sendmail uses
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    conn.send(body + b".\r\n")
    code, message = conn.getreply()
    if code != 250:
        if code == 421:
            conn.close()
        raise smtplib.SMTPDataError(code, message)
    return {}


def _classify(code: int, text: bytes | str, *, recipient: bool) -> Exception:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if 400 <= code < 500:
        return TransientMailError(f"{code} {message}")
    return PermanentMailError(code, message, recipient=recipient or message.startswith(("5.1.", "5.2.1")))


def make_sender(settings: Settings) -> Sender:
    if settings.mail_backend == "smtp":
        return SmtpSender(settings)
    if settings.mail_backend == "file":
        return FileSender(settings.outbox_dir)
    return MemorySender()

