"""Erasure and export through crm.privacy: each domain forgets its own rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm.contacts import privacy as contact_privacy
from crm.contacts import service as contacts
from crm.contacts.models import Contact, Suppression
from crm.db import session_scope
from crm.errors import NotFound
from crm.privacy import service as privacy
from crm.volunteers import privacy as volunteer_privacy
from tests.factories import make_contact, make_volunteer


def test_an_erased_row_cannot_be_relinked_by_guessing_the_address(settings: Any) -> None:
    with session_scope(settings) as s:
        cid = make_contact(s, email="gone@example.org", lists={"newsletter": "confirmed"}).id
        digest = contacts.email_hash(s, "gone@example.org")
        privacy.erase(s, cid, "admin@staff.example.org")
    with session_scope(settings) as s:
        erased = s.get(Contact, cid)
        assert erased is not None and erased.status == "erased"
        assert erased.email_hash is None and erased.email_key is None and erased.email is None
        assert s.scalars(select(Contact.id).where(Contact.email_hash == digest)).all() == []
        # The suppression row alone keeps the address from being mailed again.
        assert s.get(Suppression, digest) is not None


def test_erasure_reaches_every_domain_and_export_lists_each(settings: Any) -> None:
    with session_scope(settings) as s:
        vol = make_volunteer(s, email="vee@example.org")
        cid = vol.contact_id
        before = privacy.export(s, cid, "admin@staff.example.org")
        assert before["volunteer"] is not None and before["contact"]["email"] == "vee@example.org"
        assert {"subscriptions", "consent_events", "deliveries", "form_submissions",
                "donation_inquiries", "exported_at"} <= set(before)
        privacy.erase(s, cid, "admin@staff.example.org")
    with session_scope(settings) as s:
        assert volunteer_privacy.export_rows(s, cid) == {"volunteer": None}
        assert contact_privacy.export_rows(s, cid)["subscriptions"] == []
        with pytest.raises(NotFound):  # staff no longer see an erased person at all
            privacy.export(s, cid, "admin@staff.example.org")
