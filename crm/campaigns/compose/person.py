"""One recipient (Person), what they get (Rendered), their signed links (Links) and tracking (Tracker)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from html import unescape
from typing import Any

from markupsafe import escape

from crm.config import Settings
from crm.links import lifetime_seconds
from crm.tokens import PURPOSES, make_token


@dataclass(frozen=True)
class Person:
    contact_id: int
    delivery_id: int
    email: str
    first_name: str
    last_name: str
    language: str
    role: str | None
    items: list[dict[str, Any]] | None = None  # digests: this person's items


@dataclass
class Rendered:
    subject: str
    html: str
    text: str


class Links:
    """Signed links, with the secret read once per campaign instead of once per token."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.public_base_url
        self.secret = settings.resolved_secret("secret_key")
        self.ttl = {purpose: lifetime_seconds(settings, purpose) for purpose in PURPOSES}
        addr = parseaddr(settings.mail_from)[1] or "unsubscribe@example.org"
        self.mailto_local, _, self.mailto_domain = addr.partition("@")

    def token(self, contact_id: int, purpose: Any, extra: str = "") -> str:
        return make_token(self.secret, contact_id, purpose, self.ttl[purpose], extra=extra)

    def url(self, contact_id: int, purpose: Any, extra: str = "") -> str:
        return f"{self.base}/{purpose}/{self.token(contact_id, purpose, extra)}"

    def person(self, contact_id: int) -> dict[str, str]:
        unsubscribe_token = self.token(contact_id, "unsubscribe")
        return {"preferences": self.url(contact_id, "preferences"),
                "unsubscribe": f"{self.base}/unsubscribe/{unsubscribe_token}",
                "_unsubscribe_token": unsubscribe_token}

    def mailto(self, unsubscribe_token: str) -> str:
        return (f"mailto:{self.mailto_local}+unsubscribe@{self.mailto_domain}"
                f"?subject=unsubscribe%20{unsubscribe_token}")


ExtrasFn = Callable[[Person], dict[str, str]]

_HREF = re.compile(r'href="(https?://[^"]+)"')


class Tracker:
    """Open pixel and click redirects (off unless the campaign asks), signed so no open redirect."""

    def __init__(self, links: Links, opens: bool, clicks: bool) -> None:
        self.links, self.opens, self.clicks = links, opens, clicks

    def click_url(self, person: Person, target: str) -> str:
        return f"{self.links.base}/track/click/{self.links.token(person.contact_id, 'click', f'{person.delivery_id}|{target}')}"

    def open_tag(self, person: Person) -> str:
        token = self.links.token(person.contact_id, "open", str(person.delivery_id))
        return f'<img src="{self.links.base}/track/open/{token}" width="1" height="1" alt="" style="display:none">'

    def apply(self, html: str, person: Person, own_links: tuple[str, ...]) -> str:
        if self.clicks:
            def swap(m: re.Match[str]) -> str:
                target = unescape(m.group(1))
                if target in own_links:  # preference and unsubscribe links stay direct
                    return m.group(0)
                return f'href="{escape(self.click_url(person, target))}"'

            html = _HREF.sub(swap, html)
        if self.opens:
            tag = self.open_tag(person)
            html = html.replace("</body>", tag + "</body>", 1) if "</body>" in html else html + tag
        return html
