"""The suppression list API (SPEC 14): every verb admin-only, every status code, erasure final."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select

from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.db import session_scope
from crm.staff.models import AuditEvent
from tests.factories import make_contact

API = "/api/v1/suppressions"


def _emails(client, auth, **params):
    r = client.get(API, params=params, headers=auth("admin"))
    assert r.status_code == 200, r.text
    return [i["email"] for i in r.json()["items"]]


def test_every_verb_needs_an_admin(client, auth):
    for role in ("editor", "viewer"):
        assert client.get(API, headers=auth(role)).status_code == 403
        assert client.post(API, json={"email": "a@example.org"}, headers=auth(role)).status_code == 403
        assert client.delete(f"{API}/a@example.org", headers=auth(role)).status_code == 403
    assert client.get(API).status_code == 401
    assert client.post(API, json={"email": "a@example.org"}).status_code == 401
    assert client.delete(f"{API}/a@example.org").status_code == 401


def test_add_list_and_remove_with_audit(client, auth, settings):
    r = client.post(API, json={"email": "Pat@Example.org", "reason": "asked by phone"}, headers=auth("admin"))
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "Pat@example.org" and body["reason"] == "manual" and body["note"] == "asked by phone"
    assert body["created_at"] and body["added_by"] == "admin@staff.example.org"
    again = client.post(API, json={"email": "pat@example.org"}, headers=auth("admin"))
    assert again.status_code == 200  # already listed: nothing doubled
    assert _emails(client, auth) == ["Pat@example.org"]
    assert _emails(client, auth, q="pat@") == ["Pat@example.org"]
    assert _emails(client, auth, q="pat@example.org") == ["Pat@example.org"]
    assert _emails(client, auth, reason="bounced") == []
    gone = client.delete(f"{API}/{quote('pat@example.org')}", params={"reason": "typo"}, headers=auth("admin"))
    assert gone.status_code == 204
    assert _emails(client, auth) == []
    assert client.delete(f"{API}/pat@example.org", headers=auth("admin")).status_code == 404
    with session_scope(settings) as s:
        actions = [(e.action, e.target, e.detail.get("why")) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert ("suppression.remove", "pat@example.org", "typo") in actions
    assert actions[0][0] == "suppression.add"


def test_known_reasons_are_kept_and_erased_cannot_be_added(client, auth):
    r = client.post(API, json={"email": "b@example.org", "reason": "bounced"}, headers=auth("admin"))
    assert r.status_code == 201 and r.json()["reason"] == "bounced"
    bad = client.post(API, json={"email": "c@example.org", "reason": "erased"}, headers=auth("admin"))
    assert bad.status_code == 400 and "reason" in bad.json()["errors"]


def test_bad_bodies_are_400_naming_the_field(client, auth):
    for body, field in (({"email": "not an address"}, "email"), ({}, "email"), ({"email": 3}, "email"),
                        ({"email": "a@example.org", "extra": 1}, "extra")):
        r = client.post(API, json=body, headers=auth("admin"))
        assert r.status_code == 400, body
        assert field in r.json()["errors"], r.json()
    assert client.get(API, params={"reason": "nope"}, headers=auth("admin")).status_code == 400
    assert client.get(API, params={"cursor": "garbage"}, headers=auth("admin")).status_code == 400
    assert client.delete(f"{API}/not-an-address", headers=auth("admin")).status_code == 400


def test_contacts_unsubscribes_show_their_address_and_erased_ones_none(client, auth, settings):
    with session_scope(settings) as s:
        ann = make_contact(s, email="ann@example.org")
        contacts.suppress(s, "ann@example.org", "bounced")
        ann_id = ann.id
        contacts.suppress(s, "ben@example.org", "unsubscribed")
        make_contact(s, email="ben@example.org")
    assert sorted(_emails(client, auth)) == ["ann@example.org", "ben@example.org"]
    assert client.delete(f"{API}/ann@example.org", headers=auth("admin")).status_code == 204
    with session_scope(settings) as s:
        # The contact was marked bounced on the same evidence: lifted together.
        assert s.get(Contact, ann_id).status == "active"
    assert client.post(API, json={"email": "ann@example.org"}, headers=auth("admin")).status_code == 201
    assert client.delete(f"/api/v1/contacts/{ann_id}", headers=auth("admin")).status_code in (200, 204)
    items = client.get(API, headers=auth("admin")).json()["items"]
    erased = [i for i in items if i["reason"] == "erased"]
    assert len(erased) == 1 and erased[0]["email"] == "" and erased[0]["note"] == ""
    r = client.delete(f"{API}/ann@example.org", headers=auth("admin"))
    assert r.status_code == 409
    assert client.post(API, json={"email": "ann@example.org"}, headers=auth("admin")).status_code == 409


def test_paging_follows_the_cursor(client, auth):
    for n in range(5):
        client.post(API, json={"email": f"p{n}@example.org"}, headers=auth("admin"))
    first = client.get(API, params={"limit": 3}, headers=auth("admin")).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = client.get(API, params={"limit": 3, "cursor": first["next_cursor"]}, headers=auth("admin")).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    seen = {i["email"] for i in first["items"] + rest["items"]}
    assert seen == {f"p{n}@example.org" for n in range(5)}


def test_in_the_openapi_document(client):
    doc = client.get("/schema/openapi.json").json()
    ops = doc["paths"]
    assert {"get", "post"} <= set(ops["/api/v1/suppressions"]) and "delete" in ops["/api/v1/suppressions/{email}"]
    assert "SuppressionPublic" in doc["components"]["schemas"]
    assert "SuppressionAdd" in doc["components"]["schemas"]


def test_fuzzed_suppression_requests_never_answer_5xx(app, staff_tokens):
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import not_a_server_error

    headers = {"Authorization": f"Bearer {staff_tokens['admin']}"}
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(tag=["suppressions"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    for operation in operations:
        @given(case=operation.as_strategy())
        @hsettings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        fuzz()


def test_a_hand_added_address_is_kept_from_campaigns_until_removed(client, auth, settings):
    with session_scope(settings) as s:
        cid = make_contact(s, email="kim@example.org", lists={"newsletter": "confirmed"}).id
    with session_scope(settings) as s:
        assert contacts.is_mailable(s, cid, "newsletter")
    assert client.post(API, json={"email": "kim@example.org"}, headers=auth("admin")).status_code == 201
    with session_scope(settings) as s:
        assert not contacts.is_mailable(s, cid, "newsletter")
    assert client.delete(f"{API}/kim@example.org", params={"reason": "asked again"}, headers=auth("admin")).status_code == 204
    with session_scope(settings) as s:
        assert contacts.is_mailable(s, cid, "newsletter")
