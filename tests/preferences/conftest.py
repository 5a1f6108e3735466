"""Helpers for the preference-centre tests: people with lists, volunteers, and their links."""

from __future__ import annotations

from typing import Any

import pytest

from crm.config import Settings
from crm.db import session_scope
from crm.links import token_for
from crm.volunteers import service as volunteers
from tests.factories import make_contact


@pytest.fixture
def person(settings: Settings) -> Any:
    """person(**make_contact kwargs) -> contact id, committed so the app sees it."""

    def make(volunteer: bool = False, **kwargs: Any) -> int:
        kwargs.setdefault("lists", {"newsletter": "confirmed"})
        with session_scope(settings) as s:
            contact = make_contact(s, **kwargs)
            assert contact.id is not None
            if volunteer:
                volunteers.upsert_from_form(s, contact.id, postal_code="30301", areas=["events"],
                                            availability=["weekends"], skills="", languages=[], message="")
            return contact.id

    return make


@pytest.fixture
def link(settings: Settings) -> Any:
    """link(contact_id, "preferences") -> "/preferences/<token>"."""
    return lambda contact_id, purpose, **kw: f"/{purpose}/{token_for(settings, contact_id, purpose, **kw)}"
