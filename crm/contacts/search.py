"""Staff search over contacts: the filters of the contacts page and the API's contact list.

A substring of the address, names or postal code is answered from the newest rows first and then
from the trigram index migration 0008 builds on PostgreSQL (see search_text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlmodel import Session

from crm.addresses import normalize_email
from crm.contacts.models import (
    Contact,
    ContactInterest,
    ContactStatus,
    ContactTag,
    Subscription,
    SubscriptionState,
)
from crm.db import keyset_page
from crm.errors import Invalid


@dataclass(frozen=True)
class ContactFilters:
    q: str | None = None
    interest: str | None = None
    status: str | None = None
    role: str | None = None
    tag: str | None = None
    on_list: str | None = None  # confirmed on this list


def search_text() -> Any:
    """What `q` is matched against: one expression, so PostgreSQL answers it from one trigram index.

    The literals are rendered inline (never bound), so the expression is word for word the one
    migration 0008 indexes (`ix_contact_search_trgm`, gin_trgm_ops) and the planner can use it.
    """
    from sqlalchemy import func, literal_column

    space = literal_column("' '")
    return func.lower(func.coalesce(Contact.email_key, literal_column("''")).op("||")(space)
                      .op("||")(Contact.first_name).op("||")(space).op("||")(Contact.last_name)
                      .op("||")(space).op("||")(Contact.postal_code))


def _exact_address(q: str) -> Any | None:
    q = q.strip().lower()
    if "@" in q and " " not in q:
        try:
            return Contact.email_key == normalize_email(q).key
        except Invalid:
            return None
    return None


def _text_condition(q: str, *, indexed: bool = True) -> Any:
    """A whole address is the unique index's question; anything else a substring of search_text().

    `indexed=False` appends '' to the expression so PostgreSQL cannot pick the trigram index: for
    the newest rows, reading them in id order and stopping at a page is cheaper than the index
    whenever the text is common ("first1" matches a tenth of everyone).
    """
    exact = _exact_address(q)
    if exact is not None:
        return exact
    escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    from sqlalchemy import literal_column

    expression = search_text() if indexed else search_text().op("||")(literal_column("''"))
    return expression.like(f"%{escaped}%", escape="\\")


# A substring search looks at the newest RECENT_WINDOW contacts in id order first; only when those
# hold less than a page does it go to the trigram index for the older ones. A common text is
# answered from the newest rows, a rare one from the index, where it is cheap; neither reads the
# whole table (the planner, left alone, sends "first1" through the index and reads a tenth of it).
RECENT_WINDOW = 20_000


def _filtered(filters: ContactFilters, *, indexed: bool = True) -> Any:
    stmt = select(Contact).where(Contact.status != ContactStatus.erased)
    if filters.q:
        stmt = stmt.where(_text_condition(filters.q, indexed=indexed))
    if filters.interest:
        stmt = stmt.where(exists().where(ContactInterest.contact_id == Contact.id,
                                         ContactInterest.interest_key == filters.interest))
    if filters.tag:
        stmt = stmt.where(exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == filters.tag))
    if filters.on_list:
        stmt = stmt.where(exists().where(Subscription.contact_id == Contact.id, Subscription.list == filters.on_list,
                                         Subscription.state == SubscriptionState.confirmed))
    if filters.status:
        stmt = stmt.where(Contact.status == filters.status)
    if filters.role:
        stmt = stmt.where(Contact.role == filters.role)
    return stmt


def search(session: Session, filters: ContactFilters, after_id: int | None, limit: int) -> tuple[list[Contact], bool]:
    """Contacts newest-first by id (keyset paging); returns (page, has_more)."""
    if not filters.q or _exact_address(filters.q) is not None:
        # No substring: the planner picks well between id order and the filters' own indexes.
        return keyset_page(session, _filtered(filters), Contact.id, after_id, limit)
    window = select(Contact.id).order_by(Contact.id.desc()).offset(RECENT_WINDOW - 1).limit(1)
    threshold = session.scalar(window.where(Contact.id < after_id) if after_id is not None else window)
    if threshold is None:  # fewer contacts left than the window: one query is cheapest
        return keyset_page(session, _filtered(filters), Contact.id, after_id, limit)
    recent, more = keyset_page(session, _filtered(filters, indexed=False).where(Contact.id >= threshold),
                               Contact.id, after_id, limit)
    if more:
        return recent, True
    older, more = keyset_page(session, _filtered(filters).where(Contact.id < threshold), Contact.id, None,
                              limit - len(recent))
    return recent + older, more
