"""The Staff page (admins): invite, role, two-step rule, deactivate, API tokens shown once."""

from __future__ import annotations

import re

from litestar.testing import TestClient

from crm.db import session_scope
from crm.staff import management, totp
from crm.staff.service import authenticate
from tests.console.helpers import csrf_of, make_member, sign_in


def _member_id(settings, email: str) -> int:
    with session_scope(settings) as s:
        return management.find_staff(s, email).id


def test_only_admins_reach_the_staff_page(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    assert client.get("/staff/staff").status_code == 403
    page = client.get("/staff/")
    forged = client.post("/staff/staff/invite", data={"csrf_token": csrf_of(page.text),
                                                      "email": "x@staff.example.org", "role": "admin"})
    assert forged.status_code == 403


def test_an_admin_invites_changes_role_requires_two_step_and_manages_tokens(settings, client, sent):
    make_member(settings, "boss@staff.example.org", "admin")
    sign_in(client, "boss@staff.example.org")
    page = client.get("/staff/staff")
    assert page.status_code == 200 and "<h1>Staff</h1>" in page.text
    invited = client.post("/staff/staff/invite", data={"csrf_token": csrf_of(page.text),
                                                       "email": "New@staff.example.org", "role": "editor"})
    assert invited.status_code == 200 and "new@staff.example.org was invited as editor" in invited.text
    assert "Invited, no password yet" in invited.text
    assert [m["To"] for m in sent()] == ["new@staff.example.org"]
    again = client.post("/staff/staff/invite", data={"csrf_token": csrf_of(page.text),
                                                     "email": "new@staff.example.org", "role": "editor"})
    assert again.status_code == 409 and "Nobody was invited" in again.text
    new_id = _member_id(settings, "new@staff.example.org")
    role = client.post(f"/staff/staff/{new_id}/role", data={"csrf_token": csrf_of(page.text), "role": "viewer"})
    assert "new@staff.example.org is now viewer" in role.text
    issued = client.post(f"/staff/staff/{new_id}/token", data={"csrf_token": csrf_of(page.text)})
    token = re.search(r'<code class="token">(crm_[^<]+)</code>', issued.text).group(1)
    with session_scope(settings) as s:
        assert authenticate(s, token).email == "new@staff.example.org"
    assert token not in client.get("/staff/staff").text  # shown once
    client.post(f"/staff/staff/{new_id}/revoke-token", data={"csrf_token": csrf_of(page.text)})
    with session_scope(settings) as s:
        assert authenticate(s, token) is None
    rule = client.post("/staff/staff/two-step", data={"csrf_token": csrf_of(page.text), "required": "everyone"})
    assert "required for everyone" in rule.text
    with session_scope(settings) as s:
        assert totp.requirement(s) == totp.Requirement.everyone


def test_deactivating_a_member_stops_their_open_session_and_token_at_once(settings, app):
    make_member(settings, "boss@staff.example.org", "admin")
    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        token = management.issue_token(s, management.find_staff(s, "ed@staff.example.org"))
    with TestClient(app=app, base_url="http://testserver.local") as admin, \
            TestClient(app=app, base_url="http://testserver.local") as ed:
        sign_in(admin, "boss@staff.example.org")
        sign_in(ed, "ed@staff.example.org")
        assert ed.get("/staff/contacts").status_code == 200
        page = admin.get("/staff/staff")
        ed_id = _member_id(settings, "ed@staff.example.org")
        done = admin.post(f"/staff/staff/{ed_id}/deactivate", data={"csrf_token": csrf_of(page.text)})
        assert "their sessions and API token stopped working" in done.text and "Deactivated" in done.text
        assert ed.get("/staff/contacts", follow_redirects=False).status_code == 303
        assert ed.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        boss_id = _member_id(settings, "boss@staff.example.org")
        last = admin.post(f"/staff/staff/{boss_id}/deactivate", data={"csrf_token": csrf_of(page.text)})
        assert last.status_code == 409 and "last active admin" in last.text
