"""Role addresses (SPEC 14): from a kept list; flagged on import (a row warning naming the address, not
subscribed) and refused to staff adds with a 409 unless the request says "confirm_role_address": true."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm.contacts import roles
from crm.contacts.models import Contact, Subscription
from crm.db import session_scope
from tests.contacts.test_import import _job, _run, _upload


def test_role_addresses_come_from_the_kept_list():
    assert len(roles.role_prefixes()) > 500  # the package's list, not a handful typed here
    for address in ("info@charity.example", "Admin@charity.example", "noreply@x.org", "no-reply@x.org",
                    "postmaster@x.org", "info+news@x.org", "webmaster@x.org"):
        assert roles.is_role_address(address), address
    for address in ("ana.garcia@x.org", "information.desk.ana@x.org", "bob@x.org"):
        assert not roles.is_role_address(address), address


def test_import_warns_on_each_role_address_and_does_not_subscribe_it(client: Any, auth: Any, settings: Any):
    job_id = _upload(client, auth, "email,first_name,subscribe,consent\n"
                                   "info@charity.example,,newsletter,yes\n"
                                   "ana@example.org,Ana,newsletter,yes\n"
                                   "noreply@shop.example,,,\n")
    _run(settings, job_id)
    job = _job(client, auth, job_id)
    warnings = {e["row"]: e for e in job["errors"]}
    assert set(warnings) == {2, 4}
    assert "info@charity.example is a role address" in warnings[2]["message"]
    assert "not subscribed" in warnings[2]["message"] and warnings[2]["field"] == "email"
    assert "noreply@shop.example" in warnings[4]["message"]
    with session_scope(settings) as s:
        subscribed = s.scalars(select(Contact.email).join(Subscription, Subscription.contact_id == Contact.id)).all()
        assert subscribed == ["ana@example.org"]
        assert len(s.scalars(select(Contact)).all()) == 3  # the profiles are kept, flagged by the warning


def test_staff_adding_a_role_address_to_a_list_get_409_unless_they_confirm(client: Any, auth: Any):
    body = {"email": "info@charity.example", "subscriptions": {"newsletter": "confirmed"}}
    r = client.post("/api/v1/contacts", json=body, headers=auth("editor"))
    assert r.status_code == 409, r.text
    assert "info@charity.example is a role address" in r.text and "confirm_role_address" in r.text
    assert client.get("/api/v1/contacts", headers=auth("viewer")).json()["items"] == []  # nothing half-made
    # Without a list it is just a contact; joining a list later asks again.
    r = client.post("/api/v1/contacts", json={"email": "info@charity.example"}, headers=auth("editor"))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = client.patch(f"/api/v1/contacts/{cid}", json={"subscriptions": {"newsletter": "confirmed"}},
                     headers=auth("editor"))
    assert r.status_code == 409
    r = client.patch(f"/api/v1/contacts/{cid}", json={"subscriptions": {"newsletter": "confirmed"},
                                                      "confirm_role_address": True}, headers=auth("editor"))
    assert r.status_code == 200, r.text
    r = client.patch(f"/api/v1/contacts/{cid}", json={"confirm_role_address": "yes"}, headers=auth("editor"))
    assert r.status_code == 400 and "confirm_role_address" in r.json()["errors"]
    # A person's address is never asked about.
    r = client.post("/api/v1/contacts", json={"email": "ana@example.org", "subscriptions": {"newsletter": "confirmed"}},
                    headers=auth("editor"))
    assert r.status_code == 201
