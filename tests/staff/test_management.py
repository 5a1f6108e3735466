"""Staff management: a deactivated member or a revoked token stops at once, over HTTP and from the CLI."""

from __future__ import annotations

import subprocess
import sys

from crm.db import session_scope
from crm.staff.service import create_staff
from tests.harness import ROOT, env_for

CONTACTS = "/api/v1/contacts"


def _id_of(client, auth, email):
    items = client.get("/api/v1/staff", headers=auth("admin")).json()["items"]
    return next(s["id"] for s in items if s["email"] == email)


def test_deactivating_a_member_stops_their_token_on_the_next_request(client, auth):
    assert client.get(CONTACTS, headers=auth("editor")).status_code == 200
    editor = _id_of(client, auth, "editor@staff.example.org")
    r = client.patch(f"/api/v1/staff/{editor}", json={"active": False}, headers=auth("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get(CONTACTS, headers=auth("editor")).status_code == 401
    audit = client.get("/api/v1/audit?action=staff.change", headers=auth("admin")).json()["items"]
    assert audit[0]["target"] == "editor@staff.example.org"


def test_a_reactivated_member_needs_a_fresh_token(client, auth):
    editor = _id_of(client, auth, "editor@staff.example.org")
    client.patch(f"/api/v1/staff/{editor}", json={"active": False}, headers=auth("admin"))
    client.patch(f"/api/v1/staff/{editor}", json={"active": True}, headers=auth("admin"))
    assert client.get(CONTACTS, headers=auth("editor")).status_code == 401
    fresh = client.post(f"/api/v1/staff/{editor}/tokens", headers=auth("admin"))
    assert fresh.status_code == 201
    ok = client.get(CONTACTS, headers={"Authorization": f"Bearer {fresh.json()['token']}"})
    assert ok.status_code == 200


def test_revoking_a_token_stops_it_and_a_new_one_works(client, auth):
    viewer = _id_of(client, auth, "viewer@staff.example.org")
    assert client.delete(f"/api/v1/staff/{viewer}/tokens", headers=auth("admin")).status_code == 204
    assert client.get(CONTACTS, headers=auth("viewer")).status_code == 401
    token = client.post(f"/api/v1/staff/{viewer}/tokens", headers=auth("admin")).json()["token"]
    assert client.get(CONTACTS, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_role_change_applies_at_once(client, auth):
    viewer = _id_of(client, auth, "viewer@staff.example.org")
    assert client.post("/api/v1/segments", json={"name": "x", "rules": {"list": "newsletter"}},
                       headers=auth("viewer")).status_code == 403
    assert client.patch(f"/api/v1/staff/{viewer}", json={"role": "editor"}, headers=auth("admin")).status_code == 200
    assert client.post("/api/v1/segments", json={"name": "x", "rules": {"list": "newsletter"}},
                       headers=auth("viewer")).status_code == 201


def test_the_last_admin_cannot_be_deactivated_or_demoted(client, auth):
    admin = _id_of(client, auth, "admin@staff.example.org")
    for body in ({"active": False}, {"role": "viewer"}):
        r = client.patch(f"/api/v1/staff/{admin}", json=body, headers=auth("admin"))
        assert r.status_code == 409 and "staff" in r.json()["errors"]
    assert client.get(CONTACTS, headers=auth("admin")).status_code == 200


def test_bad_patches_name_the_field(client, auth):
    editor = _id_of(client, auth, "editor@staff.example.org")
    r = client.patch(f"/api/v1/staff/{editor}", json={"role": "owner"}, headers=auth("admin"))
    assert r.status_code == 400 and "role" in r.json()["errors"]
    assert client.patch("/api/v1/staff/999999", json={"active": False}, headers=auth("admin")).status_code == 404


def test_only_admins_manage_staff(client, auth):
    assert client.get("/api/v1/staff", headers=auth("editor")).status_code == 403
    assert client.post("/api/v1/staff/1/tokens", headers=auth("editor")).status_code == 403
    assert client.get("/api/v1/staff").status_code == 401


def test_crm_staff_deactivate_stops_the_token(settings, client, tmp_path):
    with session_scope(settings) as s:
        _, token = create_staff(s, "leaver@staff.example.org", "editor")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(CONTACTS, headers=headers).status_code == 200
    out = subprocess.run([sys.executable, "-m", "crm.cli", "staff", "deactivate", "--email", "Leaver@Staff.example.org"],
                         env=env_for(settings), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert client.get(CONTACTS, headers=headers).status_code == 401
    missing = subprocess.run([sys.executable, "-m", "crm.cli", "staff", "deactivate", "--email", "nobody@example.org"],
                             env=env_for(settings), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no staff member" in missing.stderr
