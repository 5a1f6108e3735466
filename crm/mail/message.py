"""One transactional message (EmailMessage) built from a rendered email, its headers checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

from crm.config import Settings
from crm.mail.headers import (
    check_head,
    encode_address,
    message_date,
    safe_header,
    safe_user_header,
    smtp_policy,
)
from crm.mail.render import RenderedEmail


def new_message_id(settings: Settings) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass
class Outgoing:
    to: str
    rendered: RenderedEmail
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # names the email in file names and logs (X-CRM-Kind)
    timezone: str = "UTC"

    def build(self, mail_from: str) -> EmailMessage:
        """The message, or HeaderInjection if any header would carry a line of its own."""
        msg = EmailMessage(policy=smtp_policy())
        extra = dict(self.headers)
        if self.kind:
            extra["X-CRM-Kind"] = self.kind
        msg["From"] = encode_address(mail_from)
        msg["To"] = Address(addr_spec=safe_header(self.to, "To"))
        msg["Subject"] = safe_user_header(self.rendered.subject, "Subject")
        msg["Date"] = message_date(self.timezone)
        msg["Message-ID"] = safe_header(self.message_id, "Message-ID")
        msg["MIME-Version"] = "1.0"
        for key, value in extra.items():
            msg[safe_header(key, "header name")] = safe_header(value, key)
        for name, value in msg.items():  # after the email package's own decoding of what was assigned
            safe_header(str(value), name)
        msg.set_content(self.rendered.text)
        msg.add_alternative(self.rendered.html, subtype="html")
        expected = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", *extra, "Content-Type"]
        check_head(msg.as_bytes(), expected)
        return msg
