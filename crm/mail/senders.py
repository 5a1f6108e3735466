"""Senders: where a built message goes (SMTP, .eml files, a list in memory), and SMTP error classes.

Each sender logs one line per message with its kind and never its address (`crm run` shows them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import hashlib
import logging
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage, Message
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Protocol

from crm.config import Settings
from crm.mail.headers import head_of
from crm.text import redact_addresses

log = logging.getLogger("crm.mail")


def kind_of(message: Message) -> str:
    """What an email is, for file names and logs: its X-CRM-Kind, or campaign-N, or 'email'."""
    kind = message.get("X-CRM-Kind")
    if kind is None and message.get("X-CRM-Campaign"):
        kind = "campaign-" + str(message["X-CRM-Campaign"]).replace(" ", "-")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(kind or "email"))
    return safe[:60] or "email"


def kind_of_raw(data: bytes) -> str:
    """kind_of for pre-built bytes, without parsing the message."""
    found: dict[str, str] = {}
    for line in head_of(data).split(b"\n"):
        name, _, value = line.partition(b":")
        if name.lower() in (b"x-crm-kind", b"x-crm-campaign"):
            found[name.decode().title()] = value.strip().decode("ascii", "replace")
    message = Message()
    for name, value in found.items():
        message[name] = value
    return kind_of(message)


class TransientMailError(Exception):
    """4xx or a dropped connection: try again later. `code` is the SMTP reply code, if there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def is_deferral(self) -> bool:
        """The receiving domain asks us to slow down (421, or an enhanced status 4.7.x): SPEC 14."""
        return self.code == 421 or (self.code is not None and f"{self.code} 4.7." in str(self))


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
        MemorySender.outbox.append(email.message_from_bytes(data, policy=SMTP_POLICY))  # type: ignore[arg-type]

    def close(self) -> None:
        pass


class FileSender:
    """One .eml per message, written atomically so a reader never sees half a file.

    The name says what the email is and when (`20261201T214500.123456-confirm-1a2b3c4d.eml`),
    never to whom.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> None:
        self._write(message.as_bytes(), kind_of(message), str(message["Message-ID"]))

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        self._write(data, kind_of_raw(data), message_id)

    def _write(self, data: bytes, kind: str, message_id: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
        short = hashlib.sha256(message_id.encode()).hexdigest()[:8]
        target = self.directory / f"{stamp}-{kind}-{short}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        log.info("mail written: %s", kind)

    def close(self) -> None:
        pass


class SmtpSender:
    """One SMTP connection, opened lazily and reused for every message until close()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None
        self.unanswered = False  # a body went (start) and its reply is not read yet (finish)

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
        log.info("mail sent: %s", kind_of(message))

    def send_raw(self, envelope_from: str, to: str, data: bytes, message_id: str) -> None:
        """Pre-built message bytes (CRLF line ends): the campaign pipeline's fast path."""
        self._transmit(lambda conn: _pipelined_sendmail(conn, envelope_from, to, data))
        log.info("mail sent: %s", kind_of_raw(data))

    def start(self, envelope_from: str, to: str, data: bytes) -> None:
        """send_raw without waiting for the relay to take the body: `finish` reads that reply."""
        def go(conn: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
            self.unanswered = start_message(conn, envelope_from, to, data)
            return {}

        self._transmit(go)

    def finish(self) -> None:
        """The reply to the body `start` sent (nothing if none is due); raises as send_raw would."""
        if not self.unanswered:
            return
        self.unanswered = False
        if self._conn is None:
            raise TransientMailError("connection lost before the message was answered")
        self._transmit(final_reply)

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
            raise TransientMailError(f"connection lost: {redact_addresses(str(exc))}") from exc
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
        self.unanswered = False
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
    if start_message(conn, sender, rcpt, data):
        final_reply(conn)
    return {}


def start_message(conn: smtplib.SMTP, sender: str, rcpt: str, data: bytes) -> bool:
    """Envelope and body of one message, without reading the body's final reply.

    True when that reply is still to be read (`final_reply`); False when smtplib's own sendmail
    sent the whole message (a non-ASCII address). Envelope refusals raise as sendmail would.
    """
    conn.ehlo_or_helo_if_needed()
    if not (sender.isascii() and rcpt.isascii()):
        conn.sendmail(sender, [rcpt], data)
        return False
    if conn.has_extn("pipelining"):
        conn.send(f"MAIL FROM:{smtplib.quoteaddr(sender)}\r\nRCPT TO:{smtplib.quoteaddr(rcpt)}\r\nDATA\r\n")
        mail_reply, rcpt_reply, data_reply = conn.getreply(), conn.getreply(), conn.getreply()
        if data_reply[0] == 354 and (mail_reply[0] != 250 or rcpt_reply[0] not in (250, 251)):
            conn.send(b".\r\n")  # a server that opened DATA anyway gets an empty message, then RSET
            conn.getreply()
    else:
        mail_reply = conn.mail(sender)
        rcpt_reply = conn.rcpt(rcpt) if mail_reply[0] == 250 else (0, b"")
        if mail_reply[0] == 250 and rcpt_reply[0] in (250, 251):
            conn.putcmd("data")
            data_reply = conn.getreply()
        else:
            data_reply = (0, b"")
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
    return True


def final_reply(conn: smtplib.SMTP) -> dict[str, tuple[int, bytes]]:
    """The reply to a message's body (250 when the relay took it); anything else raises SMTPDataError."""
    code, message = conn.getreply()
    if code != 250:
        if code == 421:
            conn.close()
        raise smtplib.SMTPDataError(code, message)
    return {}


def _classify(code: int, text: bytes | str, *, recipient: bool) -> Exception:
    # SMTP replies often quote the refused address; what is logged and stored must not.
    message = redact_addresses(text.decode(errors="replace") if isinstance(text, bytes) else str(text))
    if 400 <= code < 500:
        return TransientMailError(f"{code} {message}", code=code)
    return PermanentMailError(code, message, recipient=recipient or message.startswith(("5.1.", "5.2.1")))


def make_sender(settings: Settings) -> Sender:
    """The configured sender; DKIM-signing everything it sends when CRM_DKIM_* are set (crm.mail.dkim)."""
    sender: Sender
    if settings.mail_backend == "smtp":
        sender = SmtpSender(settings)
    elif settings.mail_backend == "file":
        sender = FileSender(settings.outbox_dir)
    else:
        sender = MemorySender()
    from crm.mail.dkim import SigningSender, signer_for  # the one module that needs dkimpy

    signer = signer_for(settings)
    return SigningSender(sender, signer, settings.mail_from) if signer else sender
