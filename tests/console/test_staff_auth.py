"""Console passwords, sessions and lockout, at the service level (no HTTP)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import time_machine

from crm.db import session_scope
from crm.staff import management, passwords, sessions
from crm.staff.models import Staff
from crm.staff.service import create_staff
from tests.harness import ROOT, env_for

PASSWORD = "correct horse battery staple"


def _member(s, email="ann@staff.example.org", role="editor", password=PASSWORD) -> Staff:
    staff, _ = create_staff(s, email, role)
    passwords.set_password(s, staff, password)
    s.flush()
    return staff


def test_passwords_are_stored_as_argon2id_and_verified(settings):
    with session_scope(settings) as s:
        staff = _member(s)
        assert staff.password_hash is not None and staff.password_hash.startswith("$argon2id$")
        assert PASSWORD not in staff.password_hash
        assert passwords.verify_password(staff.password_hash, PASSWORD)
        assert not passwords.verify_password(staff.password_hash, PASSWORD + "!")
        assert not passwords.verify_password(None, PASSWORD)


def test_right_password_signs_in_and_a_wrong_one_or_address_does_not(settings):
    with session_scope(settings) as s:
        _member(s)
        assert passwords.check_credentials(s, "Ann@Staff.example.org", PASSWORD, "10.0.0.1") is not None
        assert passwords.check_credentials(s, "ann@staff.example.org", "wrong password!!", "10.0.0.1") is None
        assert passwords.check_credentials(s, "nobody@staff.example.org", PASSWORD, "10.0.0.1") is None


def test_five_failures_lock_the_account_for_fifteen_minutes_even_from_another_client(settings):
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with session_scope(settings) as s:
        _member(s)
    with time_machine.travel(start, tick=False):
        with session_scope(settings) as s:
            for i in range(5):
                assert passwords.check_credentials(s, "ann@staff.example.org", "guess", f"10.0.0.{i}") is None
        with session_scope(settings) as s:
            assert passwords.check_credentials(s, "ann@staff.example.org", PASSWORD, "10.9.9.9") is None
    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False), session_scope(settings) as s:
        assert passwords.check_credentials(s, "ann@staff.example.org", PASSWORD, "10.9.9.9") is not None


def test_many_addresses_from_one_client_lock_that_client(settings):
    with session_scope(settings) as s:
        _member(s)
        for i in range(5):
            passwords.check_credentials(s, f"guess{i}@staff.example.org", "guess", "10.0.0.7")
        assert passwords.check_credentials(s, "ann@staff.example.org", PASSWORD, "10.0.0.7") is None
        assert passwords.check_credentials(s, "ann@staff.example.org", PASSWORD, "10.0.0.8") is not None


def test_a_session_expires_after_the_idle_hours_and_use_keeps_it_alive(settings):
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False), session_scope(settings) as s:
        token = sessions.start(s, _member(s))
    with time_machine.travel(start + dt.timedelta(hours=7), tick=False), session_scope(settings) as s:
        assert sessions.resume(s, token, 8) is not None
    with time_machine.travel(start + dt.timedelta(hours=14), tick=False), session_scope(settings) as s:
        assert sessions.resume(s, token, 8) is not None  # 7 hours after its last use
    with time_machine.travel(start + dt.timedelta(hours=22, minutes=1), tick=False), session_scope(settings) as s:
        assert sessions.resume(s, token, 8) is None
    with time_machine.travel(start + dt.timedelta(hours=22, minutes=2), tick=False), session_scope(settings) as s:
        assert sessions.resume(s, token, 8) is None  # gone for good, not revived


def test_ending_or_deactivating_removes_the_session(settings):
    with session_scope(settings) as s:
        create_staff(s, "boss@staff.example.org", "admin")
        staff = _member(s)
        first, second = sessions.start(s, staff), sessions.start(s, staff)
        sessions.end(s, first)
        assert sessions.resume(s, first, 8) is None and sessions.resume(s, second, 8) is not None
        management.deactivate(s, staff)
        assert sessions.resume(s, second, 8) is None


def test_crm_staff_password_reads_one_line_from_stdin(settings):
    with session_scope(settings) as s:
        create_staff(s, "cli@staff.example.org", "viewer")
    cmd = [sys.executable, "-m", "crm.cli", "staff", "password", "--email", "CLI@staff.example.org"]
    out = subprocess.run(cmd, input=PASSWORD + "\n", env=env_for(settings), cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with session_scope(settings) as s:
        assert passwords.check_credentials(s, "cli@staff.example.org", PASSWORD, "127.0.0.1") is not None
    short = subprocess.run(cmd, input="short\n", env=env_for(settings), cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert short.returncode == 2 and "password" in short.stderr
