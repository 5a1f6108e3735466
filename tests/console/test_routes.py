"""The console over HTTP: sign-in, the session cookie, CSRF, sign-out, roles, and the first pages."""

from __future__ import annotations

import re

from crm.db import session_scope
from crm.staff import management
from tests.console.helpers import PASSWORD, csrf_of, make_member, sign_in
from tests.factories import make_contact

NAV = ["Dashboard", "Contacts", "Segments", "Campaigns", "Content", "Volunteers", "Donations", "Imports"]
ADMIN_NAV = ["Audit", "Staff", "Suppressions"]


def _links(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r"<a href=\"/staff/[^\"]*\"[^>]*>([^<]+)</a>", nav)


def test_unsigned_requests_go_to_the_login_page_and_come_back_after(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    r = client.get("/staff/contacts?q=ann", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=%2Fstaff%2Fcontacts%3Fq%3Dann"
    page = client.get(r.headers["location"])
    assert 'for="email">Email<' in page.text and 'for="password">Password<' in page.text and ">Sign in<" in page.text
    done = sign_in(client, "ed@staff.example.org", next_path="/staff/contacts?q=ann")
    assert done.status_code == 303 and done.headers["location"] == "/staff/contacts?q=ann"


def test_a_next_that_leaves_the_console_is_ignored(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    for bad in ("https://evil.example/", "//evil.example/staff/", "/\\evil.example", "/api/v1/contacts"):
        r = sign_in(client, "ed@staff.example.org", next_path=bad)
        assert r.headers["location"] == "/staff/", bad
        client.cookies.clear()


def test_wrong_password_and_unknown_address_get_the_same_message(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    wrong = sign_in(client, "ed@staff.example.org", "not the password")
    unknown = sign_in(client, "nobody@staff.example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    message = re.search(r'role="alert">([^<]+)<', wrong.text).group(1)
    assert message == re.search(r'role="alert">([^<]+)<', unknown.text).group(1)
    assert "crm_staff_session" not in wrong.headers.get("set-cookie", "")


def test_repeated_failures_lock_the_account_with_the_same_message(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    for _ in range(5):
        sign_in(client, "ed@staff.example.org", "guessing wrong")
    locked = sign_in(client, "ed@staff.example.org", PASSWORD)
    assert locked.status_code == 400 and 'role="alert"' in locked.text


def test_signing_in_sets_an_httponly_lax_session_cookie(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    r = sign_in(client, "ed@staff.example.org")
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("crm_staff_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/staff" in flags and "secure" not in flags
    home = client.get("/staff/")
    assert home.status_code == 200 and home.text.count("<h1") == 1 and "<h1>Dashboard</h1>" in home.text


def test_the_cookie_is_secure_when_the_site_is_https(settings, published):
    from litestar.testing import TestClient

    from crm.app import create_app
    from tests.conftest import make_settings

    https = make_settings(settings.var_dir.parent, settings.database_url, public_base_url="https://crm.example.org")
    make_member(https, "ed@staff.example.org", "editor")
    with TestClient(app=create_app(https, publisher=published), base_url="https://crm.example.org") as c:
        r = sign_in(c, "ed@staff.example.org")
        cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith("crm_staff_session="))
        assert "secure" in cookie.lower()


def test_a_post_without_the_csrf_token_is_refused(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    assert client.post("/staff/logout", data={}, follow_redirects=False).status_code == 403
    assert client.post("/staff/logout", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    assert client.get("/staff/").status_code == 200  # still signed in: nothing changed
    login = client.post("/staff/login", data={"email": "ed@staff.example.org", "password": PASSWORD},
                        follow_redirects=False)
    assert login.status_code == 403


def test_sign_out_ends_the_session_so_a_copied_cookie_stops_working(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    copied = client.cookies.get("crm_staff_session")
    page = client.get("/staff/")
    assert ">Sign out</button>" in page.text
    out = client.post("/staff/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/staff/login"
    client.cookies.set("crm_staff_session", copied, path="/staff")
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_deactivation_ends_a_live_session(settings, client):
    make_member(settings, "boss@staff.example.org", "admin")
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    assert client.get("/staff/contacts").status_code == 200
    with session_scope(settings) as s:
        management.deactivate(s, management.find_staff(s, "ed@staff.example.org"))
    assert client.get("/staff/contacts", follow_redirects=False).status_code == 303


def test_a_viewer_sees_no_admin_links_and_is_refused_the_admin_pages(settings, client):
    make_member(settings, "val@staff.example.org", "viewer")
    sign_in(client, "val@staff.example.org")
    home = client.get("/staff/")
    assert _links(home.text) == NAV
    for path in ("/staff/audit", "/staff/staff", "/staff/suppressions"):
        r = client.get(path)
        assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.text


def test_an_admin_sees_every_link_and_every_page_has_one_h1(settings, client):
    make_member(settings, "boss@staff.example.org", "admin")
    sign_in(client, "boss@staff.example.org")
    home = client.get("/staff/")
    assert _links(home.text) == NAV + ADMIN_NAV
    for name in NAV + ADMIN_NAV:
        path = re.search(rf'<a href="(/staff/[^"]*)"[^>]*>{name}</a>', home.text).group(1)
        page = client.get(path)
        assert page.status_code == 200, name
        assert page.text.count("<h1") == 1 and f"<h1>{name}</h1>" in page.text


def test_contacts_search_filters_pages_and_opens_a_profile(settings, client, session):
    make_member(settings, "val@staff.example.org", "viewer")
    ann = make_contact(session, email="ann.search@example.org", first_name="Ann", lists={"newsletter": "confirmed"})
    for i in range(55):
        make_contact(session, email=f"bulk{i}@example.org")
    session.commit()
    sign_in(client, "val@staff.example.org")
    found = client.get("/staff/contacts", params={"q": "ann.search"})
    assert "ann.search@example.org" in found.text and "bulk1@example.org" not in found.text
    assert "<caption>" in found.text
    first = client.get("/staff/contacts")
    assert "Next page" in first.text
    nxt = re.search(r'href="(/staff/contacts\?after=[^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(nxt)
    assert second.status_code == 200 and "ann.search@example.org" in second.text
    profile = client.get(f"/staff/contacts/{ann.id}")
    assert profile.status_code == 200 and "<h1>Ann</h1>" in profile.text and "Consent trail" in profile.text
    assert client.get("/staff/contacts/999999").status_code == 404
