"""Console sign-in beyond the password: TOTP, invitations, sign out everywhere, idle expiry,
a form kept across an expired session, Redis-held sessions, and the plain error page."""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
import sys
from typing import Any

import pyotp
import pytest
import time_machine
from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy import text

from crm.console.invites import send_invitation
from crm.console.web import ConsoleSection
from crm.db import session_scope
from crm.staff import management, totp
from crm.staff.models import Staff
from crm.staff.service import create_staff
from tests.console.helpers import PASSWORD, csrf_of, make_member, sign_in
from tests.factories import make_contact
from tests.harness import ROOT, env_for
from tests.helpers import drain_outbox, parse


def _invite_link(message: Any) -> str:
    text_part = parse(message).get_body(preferencelist=("plain",)).get_content()
    return re.search(r"http://testserver\.local(/staff/invite/\S+)", text_part).group(1)


def _code_form(client: Any, response: Any) -> Any:
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login/code")
    return client.get(response.headers["location"])


def _send_code(client: Any, form: Any, code: str) -> Any:
    return client.post("/staff/login/code", data={"code": code, "next": "/staff/", "csrf_token": csrf_of(form.text)},
                       follow_redirects=False)


def _secret(html: str) -> str:
    return re.search(r'<code class="secret">([A-Z2-7]+)</code>', html).group(1)


def test_required_two_step_makes_a_member_enrol_then_asks_for_a_code_every_time(settings, client):
    make_member(settings, "boss@staff.example.org", "admin")
    with session_scope(settings) as s:
        totp.set_requirement(s, "admins")
    first = sign_in(client, "boss@staff.example.org")
    assert "crm_staff_session" not in first.headers.get("set-cookie", "")
    form = _code_form(client, first)
    assert "<h1>Set up two-step sign-in</h1>" in form.text and "otpauth://totp/" in form.text
    assert client.get("/staff/", follow_redirects=False).status_code == 303  # not signed in yet
    secret = _secret(form.text)
    assert _send_code(client, form, "000000").status_code == 400
    done = _send_code(client, form, pyotp.TOTP(secret).now())
    assert done.status_code == 303 and done.headers["location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    client.cookies.clear()
    again = _code_form(client, sign_in(client, "boss@staff.example.org"))
    assert "<h1>Two-step sign-in</h1>" in again.text and "otpauth" not in again.text
    # The code that signed in a moment ago does not sign in twice.
    assert _send_code(client, again, pyotp.TOTP(secret).now()).status_code == 400
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31), tick=False):
        assert _send_code(client, again, pyotp.TOTP(secret).now()).status_code == 303


def test_a_member_turns_two_step_on_from_their_account_page(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    account = client.get("/staff/account")
    assert "<h1>Your account</h1>" in account.text and "Set up two-step sign-in" in account.text
    started = client.post("/staff/account/two-step/start", data={"csrf_token": csrf_of(account.text)})
    secret = _secret(started.text)
    on = client.post("/staff/account/two-step/confirm", data={"csrf_token": csrf_of(started.text),
                                                               "code": pyotp.TOTP(secret).now()})
    assert on.status_code == 200 and "Two-step sign-in is on" in on.text
    client.cookies.clear()
    assert sign_in(client, "ed@staff.example.org").headers["location"].startswith("/staff/login/code")


def test_a_wrong_code_counts_as_a_failed_sign_in_and_locks(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    with session_scope(settings) as s:
        staff = s.query(Staff).one()
        secret = totp.begin_enrolment(s, staff)
        staff.totp_enabled = True
    form = _code_form(client, sign_in(client, "ed@staff.example.org"))
    for _ in range(5):
        assert _send_code(client, form, "123456").status_code == 400
    locked = _send_code(client, form, pyotp.TOTP(secret).now())
    assert locked.status_code == 400 and 'role="alert"' in locked.text


def test_the_second_step_needs_the_password_step_first(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    assert client.get("/staff/login/code", follow_redirects=False).status_code == 303
    page = client.get("/staff/login")
    r = client.post("/staff/login/code", data={"code": "123456", "csrf_token": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


def test_sign_out_everywhere_ends_the_other_sessions(settings, app):
    make_member(settings, "ed@staff.example.org", "editor")
    with TestClient(app=app, base_url="http://testserver.local") as laptop, \
            TestClient(app=app, base_url="http://testserver.local") as phone:
        sign_in(laptop, "ed@staff.example.org")
        sign_in(phone, "ed@staff.example.org")
        assert phone.get("/staff/contacts").status_code == 200
        account = laptop.get("/staff/account")
        out = laptop.post("/staff/account/sign-out-everywhere", data={"csrf_token": csrf_of(account.text)},
                          follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/staff/login"
        assert phone.get("/staff/contacts", follow_redirects=False).status_code == 303
        assert laptop.get("/staff/contacts", follow_redirects=False).status_code == 303


def test_a_forged_sign_out_everywhere_is_refused(settings, client):
    make_member(settings, "ed@staff.example.org", "editor")
    sign_in(client, "ed@staff.example.org")
    assert client.post("/staff/account/sign-out-everywhere", data={"csrf_token": "x"}).status_code == 403
    assert client.get("/staff/").status_code == 200


def test_an_idle_session_expires_and_a_form_typed_meanwhile_comes_back(settings, client, session):
    make_member(settings, "ed@staff.example.org", "editor")
    ann = make_contact(session, email="ann.stash@example.org", first_name="Ann")
    session.commit()
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=False):
        sign_in(client, "ed@staff.example.org")
        form = client.get(f"/staff/contacts/{ann.id}/edit")
    with time_machine.travel(start + dt.timedelta(hours=settings.staff_session_hours, minutes=5), tick=False):
        typed = {"csrf_token": csrf_of(form.text), "email": "ann.stash@example.org", "first_name": "Annabel",
                 "last_name": "Typed-Meanwhile", "language": "es", "interests": ["caregiving", "clinical-trials"]}
        r = client.post(f"/staff/contacts/{ann.id}/edit", data=typed, follow_redirects=False,
                        headers={"referer": f"http://testserver.local/staff/contacts/{ann.id}/edit"})
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login?next=")
        back = sign_in(client, "ed@staff.example.org", next_path=client.get(r.headers["location"]).text
                       .split('name="next" value="', 1)[1].split('"', 1)[0].replace("&amp;", "&"))
        assert back.status_code == 303 and back.headers["location"].startswith(f"/staff/contacts/{ann.id}/edit?restore=")
        refilled = client.get(back.headers["location"])
    assert 'role="status"' in refilled.text and "What you typed is back" in refilled.text
    assert 'value="Annabel"' in refilled.text and 'value="Typed-Meanwhile"' in refilled.text
    assert re.search(r'value="caregiving" checked', refilled.text)
    assert re.search(r'<option value="es" selected', refilled.text)
    assert csrf_of(refilled.text) != typed["csrf_token"]  # the new session's token, not the old one
    with session_scope(settings) as s:
        assert s.get(type(ann), ann.id).first_name == "Ann"  # nothing was saved behind their back
    assert "Annabel" not in client.get(back.headers["location"]).text  # the stash is used once


def test_crm_staff_create_emails_an_invitation_whose_link_sets_a_password_once(settings, client, sent):
    cmd = [sys.executable, "-m", "crm.cli", "staff", "create", "--email", "New.Person@staff.example.org",
           "--role", "editor"]
    out = subprocess.run(cmd, env=env_for(settings), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("crm_")  # the token alone on the last line
    invite = next(m for m in sent() if "staff console" in m["Subject"])
    assert invite["To"] == "new.person@staff.example.org" and invite["Auto-Submitted"] == "auto-generated"
    link = _invite_link(invite)
    page = client.get(link)
    assert page.status_code == 200 and "<h1>Choose your password</h1>" in page.text
    mismatch = client.post(link, data={"csrf_token": csrf_of(page.text), "password": PASSWORD,
                                       "password_again": PASSWORD + "x"}, follow_redirects=False)
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    done = client.post(link, data={"csrf_token": csrf_of(page.text), "password": PASSWORD, "password_again": PASSWORD},
                       follow_redirects=False)
    assert done.status_code == 303 and client.get("/staff/").status_code == 200
    client.cookies.clear()
    assert client.get(link).status_code == 410  # single use
    assert sign_in(client, "new.person@staff.example.org").status_code == 303


def test_an_expired_or_tampered_invitation_says_so(settings, client):
    with session_scope(settings) as s:
        staff, _ = create_staff(s, "late@staff.example.org", "viewer")
        send_invitation(s, settings, staff, "An admin")
    link = _invite_link(drain_outbox(settings)[0])
    assert client.get(link[:-3] + "abc").status_code == 410
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.staff_invite_days, hours=1)):
        gone = client.get(link)
    assert gone.status_code == 410 and "Ask an admin" in gone.text


class Boom(ConsoleSection):
    @get("/boom", sync_to_thread=True)
    def boom(self) -> str:
        raise RuntimeError("a fault deep inside")


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_server_error_is_a_plain_page_and_is_logged(settings):
    app = Litestar(route_handlers=[Boom])
    app.state.settings = settings
    kept = _Kept()
    logger = logging.getLogger("crm.console.web")
    logger.addHandler(kept)  # Litestar's logging setup replaces the root handlers pytest's caplog uses
    try:
        with TestClient(app=app, base_url="http://testserver.local") as c:
            r = c.get("/staff/boom")
    finally:
        logger.removeHandler(kept)
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Something went wrong</h1>" in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    assert kept.records and kept.records[0].exc_info is not None
    assert "a fault deep inside" in str(kept.records[0].exc_info[1])


@pytest.mark.integration
def test_sessions_live_in_redis_when_configured(settings, published, redis_url):
    from crm.app import create_app
    from tests.conftest import make_settings

    with_redis = make_settings(settings.var_dir.parent, settings.database_url, redis_url=redis_url)
    make_member(with_redis, "ed@staff.example.org", "editor")
    app = create_app(with_redis, publisher=published)
    with TestClient(app=app, base_url="http://testserver.local") as one, \
            TestClient(app=create_app(with_redis, publisher=published), base_url="http://testserver.local") as two:
        sign_in(one, "ed@staff.example.org")
        with session_scope(with_redis) as s:
            assert s.execute(text("SELECT count(*) FROM staff_session")).scalar() == 0
        two.cookies.set("crm_staff_session", one.cookies.get("crm_staff_session"), path="/staff")
        assert two.get("/staff/").status_code == 200  # another app process reads the same session
        page = one.get("/staff/")
        one.post("/staff/logout", data={"csrf_token": csrf_of(page.text)})
        assert two.get("/staff/", follow_redirects=False).status_code == 303
        # Deactivated by a path that never sees Redis (the API, the CLI): the session ends and stays ended.
        sign_in(one, "ed@staff.example.org")
        assert one.get("/staff/").status_code == 200
        make_member(with_redis, "boss@staff.example.org", "admin")
        with session_scope(with_redis) as s:
            management.deactivate(s, management.find_staff(s, "ed@staff.example.org"))
        with session_scope(with_redis) as s:
            management.reactivate(s, management.find_staff(s, "ed@staff.example.org"))
        assert one.get("/staff/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("code", ["12345", "abcdef", ""])
def test_malformed_codes_are_simply_wrong(settings, code):
    with session_scope(settings) as s:
        make_member(settings, "x@staff.example.org", "viewer")
        staff = s.query(Staff).one()
        totp.begin_enrolment(s, staff)
        assert not totp.verify(s, staff, code)
