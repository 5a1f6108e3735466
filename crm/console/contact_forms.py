"""The contact pages' forms: from what a browser posts to what crm.contacts.staff_service takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm.console.web import values
from crm.contacts.models import ContactStatus, ListKey, Role, SubscriptionState
from crm.contacts.schemas import ContactPublic

TEXT_FIELDS = ("email", "first_name", "last_name", "phone", "postal_code")
LISTS = [k.value for k in ListKey]
STATUSES = [s.value for s in ContactStatus if s != ContactStatus.erased]
ROLES = [r.value for r in Role]
STATES = [s.value for s in SubscriptionState]


@dataclass(frozen=True)
class ListFilters:
    q: str
    interest: str
    status: str
    role: str
    tag: str
    on_list: str

    def query(self) -> list[tuple[str, str]]:
        """The filters as they appear in a paging link (empty ones left out)."""
        pairs = [("q", self.q), ("interest", self.interest), ("status", self.status), ("role", self.role),
                 ("tag", self.tag), ("list", self.on_list)]
        return [(k, v) for k, v in pairs if v]


def list_filters(q: str | None, interest: str | None, status: str | None, role: str | None, tag: str | None,
                 on_list: str | None, interest_keys: set[str]) -> ListFilters:
    """Unknown choices (a hand-edited link) are dropped rather than refused: the page still opens."""
    return ListFilters(q=(q or "").strip()[:200], interest=interest if interest in interest_keys else "",
                       status=status if status in STATUSES else "", role=role if role in ROLES else "",
                       tag=(tag or "").strip()[:64], on_list=on_list if on_list in LISTS else "")


def patch_body(data: dict[str, Any], current: ContactPublic) -> dict[str, Any]:
    """The PATCH body for what the edit form changed (the API's shape, so the API's checks apply)."""
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = str(data.get(name, "")).strip()
        if value != (getattr(current, name) or ""):
            body[name] = value
    if data.get("language") and data["language"] != current.language:
        body["language"] = data["language"]
    role = data.get("role") or None
    if role != current.role:
        body["role"] = role
    interests = values(data, "interests")
    if sorted(interests) != sorted(current.interests):
        body["interests"] = interests
    tags = [t.strip() for t in str(data.get("tags", "")).split(",") if t.strip()]
    if sorted(set(tags)) != sorted(current.tags):
        body["tags"] = tags
    subs = {key: data[f"list:{key}"] for key in LISTS
            if data.get(f"list:{key}") and data[f"list:{key}"] != current.subscriptions.get(key)}
    if subs:
        body["subscriptions"] = subs
    return body


def typed(data: dict[str, Any]) -> dict[str, Any]:
    """What the person typed, to show again next to the errors."""
    return {**{k: str(data.get(k, "")) for k in (*TEXT_FIELDS, "language", "role", "tags")},
            "interests": values(data, "interests"),
            **{f"list:{key}": str(data.get(f"list:{key}", "")) for key in LISTS}}


def as_form(contact: ContactPublic) -> dict[str, Any]:
    return {**{k: getattr(contact, k) or "" for k in TEXT_FIELDS}, "language": contact.language,
            "role": contact.role or "", "tags": ", ".join(contact.tags), "interests": list(contact.interests),
            **{f"list:{key}": contact.subscriptions.get(key, "") for key in LISTS}}


def same_address(typed_text: str, email: str | None) -> bool:
    return bool(email) and typed_text.strip().lower() == (email or "").strip().lower()
